// Live workflow events for GET /events (Server-Sent Events), fed by Postgres LISTEN/NOTIFY.
//
// One LISTEN connection per process, whatever the number of streams. The mvp_workflows trigger
// (supabase/migrations/20250110000000_workflow_events.sql) appends each change to the event log
// `workflow_events` and notifies `{op, id, user_id, version, seq}` with the log id as `seq`; log
// ids follow commit order, so "every event of user U with id > N" is an exact catch-up query.
//
// Delivery: notifications for users with an open stream on this process are batched (everything
// that arrived while the previous batch was loading, at most `batchSize`), their rows loaded in one
// query as the service, and each event handed, in log order, to the streams of the user it belongs
// to, and only if the row's owner is that user. A row is the row as read when the event is
// delivered (never older than the change itself; the last event of a workflow always carries its
// current state). An insert or update whose row was deleted before it could be read is skipped:
// its delete event follows.
//
// Catch-up: a stream registers before it reads the log, so a live event that arrives while it
// replays is held and sent after the replay unless the replay already sent it (ids are compared):
// no gap, no duplicate. If the LISTEN connection drops (or a liveness probe through it does not
// come back), it is opened again and every stream catches up from its last id the same way; a batch
// whose rows cannot be loaded does the same for the streams it concerned.
//
// Bounds: `maxStreamsPerUser` streams per user on one process (the next one is refused with 429);
// a stream's unsent events (held during a catch-up, or queued while the client does not read) at
// most `maxQueuedEvents` events and `maxQueuedBytes` characters: beyond, the backlog is dropped and
// the stream ends with `event: overflow`, after which the client reconnects with Last-Event-ID and
// the log replays what it missed. A replay longer than `replayLimit` events, or from an id the
// retention purge already removed, is replaced by `event: reset` (reload, then continue).
//
// This file must not import Fastify: the route and the plugin adapt it.
import { randomUUID } from 'node:crypto'
import type { Database, Listener, UserClaims } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { EVENTS_CHANNEL, eventLogPosition, loadUserWorkflowsByIds, loadWorkflowsByIds, readEventLog } from '../store/event-store.ts'
import type { EventLogRow, EventOp } from '../store/event-store.ts'
import { readInScope, serviceScope, userScope } from '../store/scope.ts'
import { AppError } from '../errors.ts'
import { backoffDelay, sleep } from '../lib/backoff.ts'
import { Semaphore } from '../lib/semaphore.ts'

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

export type ListenFn = (db: Database, channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void) => Promise<Listener>

export interface EventHubOptions {
  db: Database
  logger?: EventLogger
  settings?: Partial<EventHubSettings>
  /** How to LISTEN (default: listenWithLoss); tests inject connection losses. */
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

interface Notice {
  op: EventOp
  id: string
  user_id: string
  seq: number
}

const OPS = new Set<string>(['INSERT', 'UPDATE', 'DELETE'])
const NOOP_LOGGER: EventLogger = { debug () {}, info () {}, warn () {}, error () {} }
const REPLAY_CHUNK = 100

function eventName (op: EventOp): EventName {
  return op === 'INSERT' ? 'workflow.insert' : op === 'UPDATE' ? 'workflow.update' : 'workflow.delete'
}

/** One SSE event. `data` is JSON text (JSON.stringify never emits a newline without indentation). */
export function sseFrame (id: number | null, event: string, data: string): string {
  return `${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`
}

function parseNotice (payload: string): Notice | { probe: string } | null {
  let v: unknown
  try {
    v = JSON.parse(payload)
  } catch {
    return null
  }
  if (!v || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  if (typeof o.probe === 'string') return { probe: o.probe }
  if (typeof o.op !== 'string' || !OPS.has(o.op) || typeof o.id !== 'string' || typeof o.user_id !== 'string') return null
  const seq = typeof o.seq === 'number' ? o.seq : Number(o.seq)
  if (!Number.isSafeInteger(seq) || seq <= 0) return null
  return { op: o.op as EventOp, id: o.id, user_id: o.user_id, seq }
}

export class EventHub {
  readonly settings: EventHubSettings
  readonly stats: EventHubStats = { delivered: 0, overflows: 0, listenerReconnects: 0, loadFailures: 0 }
  readonly db: Database
  readonly log: EventLogger
  private readonly listenFn: ListenFn
  private readonly onStreamCount: (open: number) => void
  private open_ = 0
  private readonly byUser = new Map<string, Set<EventStream>>()
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  private listener: Listener | null = null
  private generation = 0
  private connectedOnce = false
  private reconnectAttempt = 0
  private reconnectTimer: NodeJS.Timeout | null = null
  private heartbeatTimer: NodeJS.Timeout | null = null
  private probeTimer: NodeJS.Timeout | null = null
  private probe: { nonce: string, timer: NodeJS.Timeout | null } | null = null
  private pending: Notice[] = []
  private flushScheduled = false
  private flushing: Promise<void> | null = null
  private readonly tasks = new Set<Promise<unknown>>()
  private readonly catchUpSlots = new Semaphore(() => this.settings.catchUpConcurrency)

  constructor (opts: EventHubOptions) {
    this.db = opts.db
    this.log = opts.logger ?? NOOP_LOGGER
    this.listenFn = opts.listen ?? ((db, channel, onPayload, onLost) => db.listen(channel, onPayload, onLost))
    this.onStreamCount = opts.onStreamCount ?? (() => {})
    this.settings = { ...defaultEventHubSettings, ...opts.settings }
  }

  /** Open streams on this process. */
  get streamCount (): number {
    return this.open_
  }

  /** True while the LISTEN connection is up. */
  get listening (): boolean {
    return this.listener !== null
  }

  /** Changes settings at run time (tests: a short heartbeat); timers pick the new values up. */
  configure (settings: Partial<EventHubSettings>): void {
    Object.assign(this.settings, settings)
    if (this.state === 'running') this.startTimers()
  }

  async start (): Promise<void> {
    if (this.state !== 'idle') return
    this.state = 'running'
    this.startTimers()
    await this.connect()
  }

  /** Ends every stream (`event: shutdown`), waits for them to close (bounded), stops listening. */
  async stop (): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return
    const wasRunning = this.state === 'running'
    this.state = 'stopping'
    this.clearTimers()
    const closing: Array<Promise<void>> = []
    for (const set of [...this.byUser.values()]) {
      for (const s of [...set]) closing.push(s.end('shutdown'))
    }
    await Promise.all(closing)
    const listener = this.listener
    this.listener = null
    this.generation++
    if (listener) await listener.close().catch(() => {})
    if (wasRunning) {
      await this.flushing?.catch(() => {})
      await Promise.allSettled([...this.tasks])
    }
    this.pending = []
    this.state = 'stopped'
  }

  /**
   * Registers a stream for the user (so that live events are held for it from now on). Throws
   * 429 rate_limited beyond the per-user bound, 503 while the hub is not running.
   */
  open (identity: StreamIdentity): EventStream {
    if (this.state !== 'running') {
      throw new AppError('database_unavailable', 'Live events are not available right now; retry shortly', { headers: { 'retry-after': '2' } })
    }
    const set = this.byUser.get(identity.userId)
    if (set && set.size >= this.settings.maxStreamsPerUser) {
      throw new AppError('rate_limited', `At most ${this.settings.maxStreamsPerUser} event streams per user may be open at once (other tabs and devices count too); close one, or retry later`, {
        headers: { 'retry-after': '10' }
      })
    }
    const stream = new EventStream(this, identity)
    if (set) set.add(stream)
    else this.byUser.set(identity.userId, new Set([stream]))
    this.onStreamCount(++this.open_)
    return stream
  }

  /** @internal */
  remove (stream: EventStream): void {
    const set = this.byUser.get(stream.userId)
    if (!set?.delete(stream)) return
    if (set.size === 0) this.byUser.delete(stream.userId)
    this.onStreamCount(--this.open_)
  }

  /** @internal Runs fn when one of `catchUpConcurrency` slots is free. */
  async limited<T> (fn: () => Promise<T>): Promise<T> {
    return await this.catchUpSlots.run(fn)
  }

  /** @internal Keeps a background task so that stop() can wait for it. */
  track (p: Promise<unknown>): void {
    const q = p.catch(() => {}).finally(() => { this.tasks.delete(q) })
    this.tasks.add(q)
  }

  // ---- LISTEN connection ---------------------------------------------------------------------

  private async connect (): Promise<void> {
    if (this.state !== 'running') return
    const gen = ++this.generation
    let listener: Listener
    try {
      listener = await this.listenFn(this.db, EVENTS_CHANNEL,
        (payload) => { if (gen === this.generation) this.onPayload(payload) },
        (err) => { if (gen === this.generation) this.onLost(err) })
    } catch (err) {
      if (gen !== this.generation || this.state !== 'running') return
      this.log.warn({ err: { message: (err as Error).message }, attempt: this.reconnectAttempt }, 'events: LISTEN failed; retrying')
      this.scheduleReconnect()
      return
    }
    if (gen !== this.generation || this.state !== 'running') {
      await listener.close().catch(() => {})
      return
    }
    this.listener = listener
    this.reconnectAttempt = 0
    if (this.connectedOnce) {
      this.stats.listenerReconnects++
      this.log.info({ streams: this.streamCount }, 'events: LISTEN connection restored; streams catch up from the log')
    }
    this.connectedOnce = true
    // Notifications sent while nobody listened are lost: every open stream reads them from the log.
    this.resumeAll()
  }

  private onLost (err: Error): void {
    if (!this.listener) return
    this.listener = null
    this.generation++
    this.clearProbe()
    this.log.warn({ err: { message: err.message } }, 'events: LISTEN connection lost; reconnecting')
    this.scheduleReconnect()
  }

  private scheduleReconnect (): void {
    if (this.state !== 'running' || this.reconnectTimer) return
    const delay = backoffDelay(this.reconnectAttempt, 100, 5000)
    this.reconnectAttempt = Math.min(this.reconnectAttempt + 1, 10)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      void this.connect()
    }, delay)
    this.reconnectTimer.unref()
  }

  /** Every open stream reads what it may have missed from the log (then goes on live). */
  private resumeAll (): void {
    for (const set of this.byUser.values()) {
      for (const s of set) s.requestCatchUp()
    }
  }

  // A NOTIFY sent through the pool must come back through the LISTEN connection: this finds a
  // connection that died without telling (a half-open TCP connection, a proxy that dropped it).
  private sendProbe (): void {
    if (!this.listener || this.probe) return
    const nonce = randomUUID()
    const probe: { nonce: string, timer: NodeJS.Timeout | null } = { nonce, timer: null }
    this.probe = probe
    this.db.query('select pg_notify($1, $2)', [EVENTS_CHANNEL, JSON.stringify({ probe: nonce })]).then(() => {
      if (this.probe !== probe) return
      probe.timer = setTimeout(() => {
        if (this.probe !== probe) return
        this.probe = null
        const listener = this.listener
        if (!listener) return
        this.onLost(new Error('the LISTEN connection did not deliver a probe'))
        listener.abort()
      }, this.settings.probeTimeoutMs)
      probe.timer.unref()
    }, () => {
      // the database is unreachable: the probe tells nothing; try again next time
      if (this.probe === probe) this.probe = null
    })
  }

  private clearProbe (): void {
    if (this.probe?.timer) clearTimeout(this.probe.timer)
    this.probe = null
  }

  private startTimers (): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    if (this.probeTimer) clearInterval(this.probeTimer)
    this.heartbeatTimer = setInterval(() => { this.heartbeat() }, this.settings.heartbeatMs)
    this.heartbeatTimer.unref()
    this.probeTimer = setInterval(() => { this.sendProbe() }, this.settings.probeMs)
    this.probeTimer.unref()
  }

  private clearTimers (): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    if (this.probeTimer) clearInterval(this.probeTimer)
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.heartbeatTimer = this.probeTimer = this.reconnectTimer = null
    this.clearProbe()
  }

  private heartbeat (): void {
    const now = Date.now()
    for (const set of [...this.byUser.values()]) {
      for (const s of [...set]) s.tick(now)
    }
  }

  // ---- notifications → streams -----------------------------------------------------------------

  private onPayload (payload: string): void {
    const n = parseNotice(payload)
    if (!n) return
    if ('probe' in n) {
      if (this.probe && this.probe.nonce === n.probe) this.clearProbe()
      return
    }
    // Users with no stream here cost nothing (another replica, or nobody, is watching them).
    if (!this.byUser.has(n.user_id)) return
    if (this.pending.length >= this.settings.batchSize * 20) {
      // The database cannot keep up with loading rows: drop the backlog (bounded memory); the
      // streams read it from the log instead.
      this.log.warn({ pending: this.pending.length }, 'events: notification backlog too long; streams catch up from the log')
      this.pending = []
      this.resumeAll()
      return
    }
    this.pending.push(n)
    this.scheduleFlush()
  }

  private scheduleFlush (): void {
    if (this.flushScheduled || this.flushing) return
    this.flushScheduled = true
    // setImmediate: the notifications of one socket read arrive in one batch.
    setImmediate(() => {
      this.flushScheduled = false
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = null
        if (this.pending.length > 0) this.scheduleFlush()
      })
    })
  }

  private async flushLoop (): Promise<void> {
    while (this.pending.length > 0 && this.state === 'running') {
      const batch = this.pending.splice(0, this.settings.batchSize)
      await this.deliver(batch)
    }
  }

  private async deliver (batch: Notice[]): Promise<void> {
    const wanted = batch.filter((n) => this.byUser.has(n.user_id))
    if (wanted.length === 0) return
    const ids = [...new Set(wanted.filter((n) => n.op !== 'DELETE').map((n) => n.id))]
    let rows: Map<string, Workflow>
    try {
      const loaded = ids.length === 0 ? [] : await readInScope(this.db, serviceScope, (q) => loadWorkflowsByIds(q, ids))
      rows = new Map(loaded.map((r) => [r.id, r]))
    } catch (err) {
      this.stats.loadFailures++
      this.log.warn({ err: { message: (err as Error).message }, events: wanted.length }, 'events: could not load rows; the streams concerned catch up from the log')
      for (const user of new Set(wanted.map((n) => n.user_id))) {
        for (const s of this.byUser.get(user) ?? []) s.requestCatchUp()
      }
      return
    }
    const json = new Map<string, string>()
    wanted.sort((a, b) => a.seq - b.seq)
    for (const n of wanted) {
      const streams = this.byUser.get(n.user_id)
      if (!streams) continue
      let data: string
      if (n.op === 'DELETE') {
        data = JSON.stringify({ id: n.id })
      } else {
        const row = rows.get(n.id)
        // gone since (its delete event follows), or no longer this user's: nothing to send
        if (!row || row.user_id !== n.user_id) continue
        data = json.get(n.id) ?? JSON.stringify(row)
        json.set(n.id, data)
      }
      const text = sseFrame(n.seq, eventName(n.op), data)
      for (const s of streams) s.push(n.seq, text)
    }
  }
}

interface Held {
  id: number
  text: string
}

/**
 * One client's stream. States: `new` (registered, not yet writing: live events are held),
 * `catching_up` (replaying from the log: live events are held), `live`, `closed`.
 */
export class EventStream {
  readonly userId: string
  readonly claims: UserClaims
  readonly expiresAt: number | null
  /** Highest event id sent (or skipped) on this stream: where a catch-up resumes. */
  lastId = 0
  /** Highest event id handed to the socket. */
  writtenId = 0
  private readonly hub: EventHub
  private state: 'new' | 'catching_up' | 'live' | 'closed' = 'new'
  private sink: EventSink | null = null
  private held: Held[] = []
  private heldBytes = 0
  private queue: Array<{ id: number, text: string }> = []
  private queueBytes = 0
  private blocked = false
  private again = false
  private drainWaiters: Array<() => void> = []
  private closedPromise: Promise<void> | null = null
  private resolveClosed: (() => void) | null = null
  /** Resolves when the stream closes (ends the waits of a catch-up). */
  private readonly gone: Promise<void>
  private markGone: () => void = () => {}

  constructor (hub: EventHub, identity: StreamIdentity) {
    this.hub = hub
    this.userId = identity.userId
    this.claims = identity.claims
    this.expiresAt = identity.expiresAt ?? null
    this.gone = new Promise((resolve) => { this.markGone = resolve })
  }

  get isClosed (): boolean {
    return this.state === 'closed'
  }

  /**
   * Decides how the stream begins: `from` null → `ready` at the user's current position; else a
   * replay of the events after `from`, or a reset when the log cannot replay from there. Reads
   * the log under RLS as the user. Call before the response starts (a failure is a 503).
   */
  async begin (from: number | null): Promise<StreamStart> {
    const scope = userScope(this.claims)
    const pos = await readInScope(this.hub.db, scope, (q) => eventLogPosition(q, this.userId))
    const current = Math.max(pos.head, pos.horizon)
    if (from === null) return { kind: 'ready', id: current }
    if (from > current) return { kind: 'reset', id: current, reason: 'unknown_id' }
    if (from < pos.horizon) return { kind: 'reset', id: current, reason: 'purged' }
    const limit = this.hub.settings.replayLimit
    const events = await readInScope(this.hub.db, scope, (q) => readEventLog(q, this.userId, from, limit + 1))
    if (events.length > limit) return { kind: 'reset', id: current, reason: 'too_many' }
    this.lastId = Math.max(this.lastId, from)
    return { kind: 'replay', events }
  }

  /** Starts writing (the response headers are sent): the retry hint, the start, then live events. */
  attach (sink: EventSink, start: StreamStart): void {
    if (this.state !== 'new') {
      if (this.state === 'closed') sink.end()
      return
    }
    this.sink = sink
    sink.once('close', () => { this.close() })
    this.state = 'catching_up'
    this.send(`retry: ${this.hub.settings.retryMs}\n\n`)
    this.hub.track(this.run(start))
  }

  /** A live event from the hub (in log order). */
  push (id: number, text: string): void {
    if (this.state === 'closed') return
    if (this.state !== 'live') {
      this.held.push({ id, text })
      this.heldBytes += text.length
      if (this.held.length > this.hub.settings.maxQueuedEvents || this.heldBytes > this.hub.settings.maxQueuedBytes) this.overflow()
      return
    }
    if (id <= this.lastId) return
    this.lastId = id
    this.hub.stats.delivered++
    this.send(text, id)
  }

  /** Read the log from lastId again (events may have been missed), then go on live. */
  requestCatchUp (): void {
    if (this.state === 'live') {
      this.state = 'catching_up'
      this.hub.track(this.run(null))
    } else if (this.state !== 'closed') {
      this.again = true
    }
  }

  /** Heartbeat and token expiry (from the hub's timer). */
  tick (now: number): void {
    if (this.state === 'closed' || !this.sink) return
    if (this.expiresAt !== null && now >= this.expiresAt) {
      void this.end('reauthenticate')
      return
    }
    if (!this.blocked) this.send(': ping\n\n')
  }

  /**
   * Ends the stream with a final event (`shutdown`, `reauthenticate`, `overflow`); resolves when the
   * socket closed (destroyed after `endTimeoutMs` if the client does not read).
   */
  end (reason: 'shutdown' | 'reauthenticate' | 'overflow'): Promise<void> {
    if (this.state === 'closed') return this.closedPromise ?? Promise.resolve()
    const sink = this.sink
    this.shutdown()
    if (!sink || sink.destroyed) return Promise.resolve()
    const closed = new Promise<void>((resolve) => {
      this.resolveClosed = resolve
    })
    this.closedPromise = closed
    const timer = setTimeout(() => {
      sink.destroy()
      this.resolveClosed?.()
    }, this.hub.settings.endTimeoutMs)
    timer.unref()
    sink.once('close', () => {
      clearTimeout(timer)
      this.resolveClosed?.()
    })
    if (!sink.writableEnded) {
      const detail = reason === 'overflow'
        ? 'This client read too slowly: reconnect with Last-Event-ID to receive what it missed'
        : reason === 'reauthenticate'
          ? 'The access token expired: reconnect with a fresh token and Last-Event-ID'
          : 'The server is shutting down: reconnect with Last-Event-ID'
      sink.write(sseFrame(null, reason, JSON.stringify({ reason, last_event_id: this.writtenId, detail })))
      sink.end()
    }
    return closed
  }

  /** The client went away (or the route gave up before attaching). */
  close (): void {
    if (this.state === 'closed') return
    this.shutdown()
  }

  private shutdown (): void {
    this.state = 'closed'
    this.held = []
    this.heldBytes = 0
    this.queue = []
    this.queueBytes = 0
    this.hub.remove(this)
    this.markGone()
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  private overflow (): void {
    this.hub.stats.overflows++
    this.hub.log.info({ userId: this.userId, queued: this.queue.length + this.held.length }, 'events: stream overflowed; closing it')
    void this.end('overflow')
  }

  // ---- catch-up ---------------------------------------------------------------------------------

  private async run (first: StreamStart | null): Promise<void> {
    let start = first
    let attempt = 0
    while (this.state === 'catching_up') {
      try {
        if (!start) {
          const from = this.lastId
          start = await this.hub.limited(() => this.begin(from))
        }
        const s = start
        start = null
        await this.apply(s)
        attempt = 0
        if (this.state !== 'catching_up') return
        if (this.again) {
          this.again = false
          continue
        }
        this.goLive()
        return
      } catch (err) {
        start = null
        if (this.state !== 'catching_up') return
        this.hub.log.warn({ err: { message: (err as Error).message }, userId: this.userId, attempt }, 'events: catch-up failed; retrying')
        // jittered: after a database restart every stream retries, and not all in the same instant
        await Promise.race([sleep(backoffDelay(attempt++, 250, 10_000)), this.gone])
      }
    }
  }

  private async apply (start: StreamStart): Promise<void> {
    if (start.kind === 'ready' || start.kind === 'reset') {
      const data = start.kind === 'ready'
        ? { last_event_id: start.id }
        : { reason: start.reason, last_event_id: start.id, detail: 'Events since your Last-Event-ID cannot be replayed: reload the workflows (GET /workflows), then apply the events that follow' }
      this.lastId = Math.max(this.lastId, start.id)
      this.send(sseFrame(start.id, start.kind, JSON.stringify(data)), start.id)
      return
    }
    const events = start.events.filter((e) => e.id > this.lastId)
    for (let i = 0; i < events.length && this.state === 'catching_up'; i += REPLAY_CHUNK) {
      const chunk = events.slice(i, i + REPLAY_CHUNK)
      const ids = [...new Set(chunk.filter((e) => e.op !== 'DELETE').map((e) => e.workflow_id))]
      const loaded = ids.length === 0
        ? []
        : await readInScope(this.hub.db, userScope(this.claims), (q) => loadUserWorkflowsByIds(q, this.userId, ids))
      const rows = new Map(loaded.map((r) => [r.id, r]))
      for (const e of chunk) {
        if (this.state !== 'catching_up') return
        if (e.id <= this.lastId) continue
        let data: string
        if (e.op === 'DELETE') {
          data = JSON.stringify({ id: e.workflow_id })
        } else {
          const row = rows.get(e.workflow_id)
          if (!row) {
            this.lastId = e.id
            continue
          }
          data = JSON.stringify(row)
        }
        // a replay never queues past the socket: it waits for the client to read
        await this.drained()
        if (this.state !== 'catching_up') return
        this.lastId = e.id
        this.hub.stats.delivered++
        this.send(sseFrame(e.id, eventName(e.op), data), e.id)
      }
    }
  }

  private goLive (): void {
    const held = this.held
    this.held = []
    this.heldBytes = 0
    this.state = 'live'
    for (const h of held) {
      if (this.state !== 'live') return
      this.push(h.id, h.text)
    }
  }

  // ---- writing with backpressure ------------------------------------------------------------------

  private send (text: string, id = 0): void {
    const sink = this.sink
    if (!sink || this.state === 'closed') return
    if (this.blocked) {
      this.queue.push({ id, text })
      this.queueBytes += text.length
      if (this.queue.length > this.hub.settings.maxQueuedEvents || this.queueBytes > this.hub.settings.maxQueuedBytes) this.overflow()
      return
    }
    if (id > 0) this.writtenId = id
    if (!sink.write(text)) {
      this.blocked = true
      sink.once('drain', () => { this.onDrain() })
    }
  }

  private onDrain (): void {
    this.blocked = false
    const sink = this.sink
    if (!sink || this.state === 'closed') return
    while (this.queue.length > 0) {
      const next = this.queue.shift()!
      this.queueBytes -= next.text.length
      if (next.id > 0) this.writtenId = next.id
      if (!sink.write(next.text)) {
        this.blocked = true
        sink.once('drain', () => { this.onDrain() })
        return
      }
    }
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  private drained (): Promise<void> {
    if (!this.blocked || this.state === 'closed') return Promise.resolve()
    return new Promise((resolve) => { this.drainWaiters.push(resolve) })
  }
}
