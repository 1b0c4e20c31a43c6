// The events' bounds, and the types the route, the plugin and the hub share (see README.md).
import type { Store } from '../../store/store.ts'
import type { EventLogRow } from '../../store/rows.ts'
import type { UserClaims } from '../../store/scope.ts'

export interface EventHubSettings {
  /** Interval of the `: ping` comment on every stream (proxies close silent connections). */
  heartbeatMs: number
  /** Open streams per user on one process; the next one answers 429. */
  maxStreamsPerUser: number
  /** Unsent events a stream may hold (slow client, or live events during its catch-up). */
  maxQueuedEvents: number
  /** Unsent characters a stream may hold. */
  maxQueuedBytes: number
  /** Longest replay; a client further behind is told to reload (`event: reset`). */
  replayLimit: number
  /** The SSE `retry:` hint to clients (ms). */
  retryMs: number
  /** Interval of the LISTEN liveness probe (a NOTIFY that must come back through it). */
  probeMs: number
  /** How long the probe may take before the LISTEN connection is considered lost. */
  probeTimeoutMs: number
  /** Most notifications whose rows are loaded in one query (20 × this may wait; beyond, the streams catch up from the log). */
  batchSize: number
  /** After its final event, how long a stream may take to flush before its socket is destroyed. */
  endTimeoutMs: number
  /** Catch-ups (after a LISTEN reconnect) running at once. */
  catchUpConcurrency: number
}

export const defaultEventHubSettings: Readonly<EventHubSettings> = Object.freeze({
  heartbeatMs: 15_000,
  maxStreamsPerUser: 5,
  maxQueuedEvents: 1000,
  maxQueuedBytes: 4 * 1024 * 1024,
  replayLimit: 1000,
  retryMs: 2000,
  probeMs: 30_000,
  probeTimeoutMs: 5000,
  batchSize: 500,
  endTimeoutMs: 2000,
  catchUpConcurrency: 4
})

export interface EventLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** Where a stream writes: an http.ServerResponse (after the headers) satisfies it. */
export interface EventSink {
  write(chunk: string): boolean
  end(): void
  destroy(): void
  once(event: 'drain' | 'close', listener: () => void): unknown
  readonly destroyed: boolean
  readonly writableEnded: boolean
}

/** A LISTEN connection (the Database's Listener). */
export interface EventListener {
  /** UNLISTEN and give the connection back. */
  close(): Promise<void>
  /** Drop the connection without a round trip (it is believed dead). */
  abort(): void
}

/**
 * The database's notification side (a Database is one): LISTEN on a connection of its own, and
 * NOTIFY for the liveness probe. Every query of the events goes through the Store instead.
 */
export interface EventSource {
  listen(channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<EventListener>
  notify(channel: string, payload: string): Promise<void>
}

export type ListenFn = (db: EventSource, channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void) => Promise<EventListener>

export interface EventHubOptions {
  /** Where the event log and the rows are read. */
  store: Store
  /** Where the notifications come from (the Postgres modes' Database). */
  db: EventSource
  logger?: EventLogger
  settings?: Partial<EventHubSettings>
  /** How to LISTEN (default: db.listen); tests inject connection losses. */
  listen?: ListenFn
  /** Called with the number of open streams whenever it changes (metrics). */
  onStreamCount?: (open: number) => void
}

export interface StreamIdentity {
  userId: string
  claims: UserClaims
  /** When the access token expires (ms since the epoch): the stream ends then (`event: reauthenticate`). */
  expiresAt?: number | null
}

export type EventName = 'workflow.insert' | 'workflow.update' | 'workflow.delete'

/** What a stream sends first (decided before the response starts, so a database failure is a 503). */
export type StreamStart =
  | { kind: 'ready', id: number }
  | { kind: 'reset', id: number, reason: 'purged' | 'too_many' | 'unknown_id' }
  | { kind: 'replay', events: EventLogRow[] }

export interface EventHubStats {
  /** Event frames handed to streams (live and replayed). */
  delivered: number
  overflows: number
  listenerReconnects: number
  loadFailures: number
}

export const NOOP_LOGGER: EventLogger = { debug () {}, info () {}, warn () {}, error () {} }
