// The hub: one LISTEN connection per process, fanned out to the streams (see README.md).
// This file must not import Fastify: the route and the plugin adapt it.
import { randomUUID } from 'node:crypto'
import type { Workflow } from '../../schemas/workflow.ts'
import { serviceScope } from '../../store/scope.ts'
import { EVENTS_CHANNEL } from '../../store/store.ts'
import type { Store } from '../../store/store.ts'
import { AppError } from '../../errors.ts'
import { backoffDelay } from '../../lib/backoff.ts'
import { Semaphore } from '../../lib/semaphore.ts'
import { eventName, parseNotice, sseFrame } from './frames.ts'
import type { Notice } from './frames.ts'
import { defaultEventHubSettings, NOOP_LOGGER } from './settings.ts'
import type { EventHubOptions, EventHubSettings, EventHubStats, EventListener, EventLogger, EventSource, ListenFn, StreamIdentity } from './settings.ts'
import { EventStream } from './stream.ts'

export class EventHub {
  readonly settings: EventHubSettings
  readonly stats: EventHubStats = { delivered: 0, overflows: 0, listenerReconnects: 0, loadFailures: 0 }
  readonly store: Store
  readonly db: EventSource
  readonly log: EventLogger
  private readonly listenFn: ListenFn
  private readonly onStreamCount: (open: number) => void
  private open_ = 0
  private readonly byUser = new Map<string, Set<EventStream>>()
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle'
  private listener: EventListener | null = null
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
    this.store = opts.store
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
    let listener: EventListener
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
    this.db.notify(EVENTS_CHANNEL, JSON.stringify({ probe: nonce })).then(() => {
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
      const loaded = ids.length === 0 ? [] : await this.store.workflowsByIds(serviceScope, ids)
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
