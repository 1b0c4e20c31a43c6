// One client's stream: its start, its catch-up from the log, and writing with backpressure (see
// README.md). This file must not import Fastify.
import { userScope } from '../../store/scope.ts'
import type { UserClaims } from '../../store/scope.ts'
import { backoffDelay, sleep } from '../../lib/backoff.ts'
import { eventName, sseFrame } from './frames.ts'
import type { EventHub } from './hub.ts'
import type { EventSink, StreamIdentity, StreamStart } from './settings.ts'

const REPLAY_CHUNK = 100

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
    const pos = await this.hub.store.eventLogPosition(scope)
    const current = Math.max(pos.head, pos.horizon)
    if (from === null) return { kind: 'ready', id: current }
    if (from > current) return { kind: 'reset', id: current, reason: 'unknown_id' }
    if (from < pos.horizon) return { kind: 'reset', id: current, reason: 'purged' }
    const limit = this.hub.settings.replayLimit
    const events = await this.hub.store.readEventLog(scope, from, limit + 1)
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
        : await this.hub.store.workflowsByIds(userScope(this.claims), ids)
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
