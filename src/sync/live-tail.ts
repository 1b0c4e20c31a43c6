// The live tail: n8n's executions into the ledger continuously, without anyone calling /sync.
// No Fastify here (the plugin src/plugins/live-tail.ts drives it). Why it is exact and fenced:
// README.md beside this file, "The live tail".
//
// This file is the leader part (the lock, the epoch, the loop, backoff, the first start's
// backfill, housekeeping); one tick and the state ticks carry: tail-tick.ts.

import { randomUUID } from 'node:crypto'
import type { Store } from '../store/store.ts'
import { serviceScope } from '../store/scope.ts'
import { AppError, isAppError } from '../errors.ts'
import type { N8nClient } from '../services/n8n-client.ts'
import { executionId } from './execution-ids.ts'
import { TailTicker } from './tail-tick.ts'

export type TailN8n = Pick<N8nClient, 'listExecutions' | 'getExecution' | 'iterateWorkflows' | 'getWorkflow'>

type LogFn = (obj: object, msg?: string) => void
export interface TailLogger { info: LogFn, warn: LogFn, error: LogFn, debug?: LogFn }

export type TailRole = 'off' | 'standby' | 'leader'

export interface TailTickInfo {
  ok: boolean
  durationMs: number
  n8nCalls: number
  /** Ledger rows inserted or changed. */
  ingested: number
  error?: string
}

export interface LiveTailOptions {
  store: Store
  n8n: TailN8n
  logger: TailLogger
  /** Start-to-start time between ticks (LIVE_SYNC_INTERVAL_MS). */
  intervalMs: number
  /** The first full sync of a deployment (the engine's /sync/all); also the fallback sync. */
  backfill: () => Promise<{ status: string }>
  /** Scheduled cleanup on the leader (CLEANUP_INTERVAL_MINUTES); omitted: none. */
  cleanup?: { everyMs: number, run: () => Promise<unknown> }
  /** Retries of `pending` deploys on the leader; omitted: none. */
  pending?: { list: () => Promise<string[]>, redeploy: (workflowId: string) => Promise<string>, everyMs?: number, maxBackoffMs?: number }
  /** How often a standby tries the lock. Default: the interval (at least 250 ms). */
  standbyMs?: number
  /** Longest wait after failed ticks. Default 30 s. */
  maxBackoffMs?: number
  /** A leader confirms its epoch at least this often. Default 5 s (at most 3 intervals). */
  fenceCheckMs?: number
  /** Longest wait between re-checks of an open run that left the lists. Default 60 s. */
  recheckMaxMs?: number
  /** Open runs fetched by id per tick at most (the rest wait for the next ticks). Default 50. */
  recheckPerTick?: number
  /** n8n without a running list: full sync this often. Default 10 min. */
  fallbackSyncMs?: number
  /** Called after each leader tick (metrics). */
  onTick?: (info: TailTickInfo) => void
  /** Called for each n8n call the tail makes (metrics). */
  onN8nCall?: () => void
  /** This replica's name in the lock and the state row. */
  holder?: string
  now?: () => number
  random?: () => number
}

export interface TailStatus {
  role: TailRole
  /** Leader: ticking; backoff: its last tick failed and it waits; backfill: the first full sync runs. */
  state: 'off' | 'standby' | 'backfill' | 'tailing' | 'backoff'
  interval_ms: number
  epoch: string | null
  frontier: string | null
  /** Seconds since the start of the last successful tick (what the ledger may lag n8n); null: none yet. */
  lag_seconds: number | null
  last_tick_at: string | null
  consecutive_errors: number
  last_error: string | null
  /** In backoff: how long it waits before the next try. */
  retry_in_ms: number | null
  running_list: 'supported' | 'unsupported' | 'unknown'
}

export function isFenced (err: unknown): boolean {
  return isAppError(err) && err.code === 'conflict' && err.message.startsWith('fenced')
}

export class LiveTail {
  readonly #store: Store
  readonly #n8n: TailN8n
  readonly #log: TailLogger
  readonly #interval: number
  readonly #opts: LiveTailOptions
  readonly #holder: string
  readonly #now: () => number
  readonly #random: () => number
  #loop: Promise<void> | null = null
  #stopping = false
  #wake: (() => void) | null = null
  /** One tick and the state the ticks carry (tail-tick.ts). */
  readonly #ticker: TailTicker

  // leader state
  #role: TailRole = 'off'
  #state: TailStatus['state'] = 'off'
  #epoch: string | null = null
  #errors = 0
  #retryIn = 0
  #lastError: string | null = null
  #cleanupAt: number | null = null
  #pendingNextCheck = 0
  #pendingBackoff = new Map<string, { attempts: number, nextAt: number }>()
  #housekeeping: Promise<void> | null = null

  constructor (opts: LiveTailOptions) {
    this.#store = opts.store
    this.#n8n = opts.n8n
    this.#log = opts.logger
    this.#interval = Math.max(1, Math.trunc(opts.intervalMs))
    this.#opts = opts
    this.#holder = opts.holder ?? `tail:${randomUUID()}`
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
    this.#ticker = new TailTicker(opts, this.#interval, this.#now, () => this.#stopping)
  }

  get holder (): string { return this.#holder }

  /** Starts the loop (standby until it gets the lock). */
  start (): void {
    if (this.#loop !== null) return
    this.#stopping = false
    this.#role = 'standby'
    this.#state = 'standby'
    this.#loop = this.#run().catch((err: unknown) => {
      this.#log.error({ err }, 'live tail: loop ended unexpectedly')
    })
  }

  /**
   * Stops the loop: the tick in progress finishes, the lock is released. Idempotent. Bounded by
   * `boundMs` (a tick stuck on a slow n8n must not hold a shutdown): past it the loop is left to
   * end by itself (it starts nothing new, and its writes stay fenced).
   */
  async stop (boundMs = 5000): Promise<void> {
    this.#stopping = true
    this.#wake?.()
    const loop = this.#loop
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, boundMs) })
    if (loop) await Promise.race([Promise.all([loop, this.#housekeeping?.catch(() => {})]), bound])
    clearTimeout(timer)
    this.#loop = null
    this.#role = 'off'
    this.#state = 'off'
  }

  status (): TailStatus {
    const now = this.#now()
    const tk = this.#ticker
    const frontier = tk.frontier
    const goodStart = tk.lastGoodTickStart
    const lastTickAt = tk.lastTickAt
    return {
      role: this.#role,
      state: this.#state,
      interval_ms: this.#interval,
      epoch: this.#epoch,
      frontier: frontier === null ? null : frontier.toString(),
      lag_seconds: this.#role !== 'leader' || goodStart === null ? null : Math.max(0, (now - goodStart) / 1000),
      last_tick_at: lastTickAt === null ? null : new Date(lastTickAt).toISOString(),
      consecutive_errors: this.#errors,
      last_error: this.#lastError,
      retry_in_ms: this.#state === 'backoff' ? this.#retryIn : null,
      running_list: tk.runningSupport
    }
  }

  // ---- loop ------------------------------------------------------------------------------------

  async #run (): Promise<void> {
    const standbyMs = Math.max(250, this.#opts.standbyMs ?? this.#interval)
    let failures = 0
    while (!this.#stopping) {
      try {
        const r = await this.#store.withLock(serviceScope, { name: 'live_tail' }, () => this.#lead(), { wait: false })
        failures = 0
        if (!r.acquired) this.#setStandby()
      } catch (err) {
        // The database is down (the lock could not even be tried): wait and try again.
        failures++
        this.#setStandby()
        this.#lastError = errorCode(err)
        this.#log.warn({ err }, 'live tail: could not try the leader lock')
      }
      if (this.#stopping) break
      await this.#sleep(failures > 0 ? this.#backoffMs(failures) : standbyMs)
    }
  }

  #setStandby (): void {
    this.#role = 'standby'
    this.#state = 'standby'
    this.#epoch = null
  }

  /** Runs while this replica holds the lock; returns to step down. */
  async #lead (): Promise<void> {
    const claimed = await this.#store.liveTailClaim(serviceScope, this.#holder)
    this.#role = 'leader'
    this.#epoch = claimed.epoch
    this.#ticker.lead(claimed.frontier)
    this.#errors = 0
    this.#cleanupAt = claimed.cleanup_at === null ? null : Date.parse(claimed.cleanup_at)
    this.#log.info({ epoch: claimed.epoch, frontier: claimed.frontier, holder: this.#holder }, 'live tail: leading')
    let backfilled = claimed.backfilled
    let loaded = false
    let identityLoad: Promise<void> | null = null
    try {
      while (!this.#stopping) {
        const started = this.#now()
        try {
          if (!loaded) {
            await this.#ticker.loadOpen()
            // In the background: a new leader ticks at once (unknown ids are asked for one by one
            // meanwhile), so a takeover is not held up by listing every workflow.
            identityLoad ??= this.#ticker.loadIdentities().catch((err: unknown) => { this.#log.warn({ err }, 'live tail: listing the workflows\' markers failed; they are read one by one') })
            loaded = true
          }
          if (this.#ticker.frontier === null || !backfilled) {
            await this.#backfill()
            backfilled = true
          }
          await this.#ticker.tick(this.#epochOrThrow(), started)
          this.#errors = 0
          this.#state = 'tailing'
          this.#maybeHousekeeping()
          await this.#sleep(Math.max(0, started + this.#interval - this.#now()))
        } catch (err) {
          if (isFenced(err)) {
            this.#log.warn({ epoch: this.#epoch }, 'live tail: another replica claimed the tail; standing by')
            return
          }
          this.#errors++
          this.#lastError = errorCode(err)
          this.#state = 'backoff'
          const wait = this.#backoffMs(this.#errors)
          this.#retryIn = Math.round(wait)
          this.#log.warn({ err, consecutive_errors: this.#errors, retry_in_ms: Math.round(wait) }, 'live tail: tick failed; backing off')
          this.#opts.onTick?.({ ok: false, durationMs: this.#now() - started, n8nCalls: 0, ingested: 0, error: this.#lastError })
          await this.#sleep(wait)
        }
      }
    } finally {
      await this.#housekeeping?.catch(() => {})
      await identityLoad
      this.#setStandby()
    }
  }

  #backoffMs (errors: number): number {
    const cap = Math.max(this.#interval, this.#opts.maxBackoffMs ?? 30_000)
    const base = Math.min(cap, this.#interval * 2 ** Math.min(errors, 20))
    // "Equal jitter": between half and all of the step, so replicas that failed together spread out.
    return base / 2 + this.#random() * base / 2
  }

  #sleep (ms: number): Promise<void> {
    if (this.#stopping || ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.#wake = null; resolve() }, ms)
      this.#wake = () => { clearTimeout(timer); this.#wake = null; resolve() }
    })
  }

  /** First start of a deployment: the frontier, then the full sync (README.md, "FIRST START"). */
  async #backfill (): Promise<void> {
    const epoch = this.#epochOrThrow()
    let frontier = this.#ticker.frontier
    if (frontier === null) {
      const top = await this.#ticker.call(() => this.#n8n.listExecutions({ limit: 1 }))
      const c0 = top.data[0]?.id ?? '0'
      executionId(c0)
      const r = await this.#store.liveTailIngest(serviceScope, epoch, { items: [], vanished: [], state: { frontier: c0 } }, new Date(this.#now()))
      frontier = BigInt(r.frontier ?? c0)
      this.#ticker.setFrontier(frontier.toString())
    }
    this.#state = 'backfill'
    this.#log.info({ frontier: frontier.toString() }, 'live tail: first full sync of this deployment')
    const result = await this.#opts.backfill()
    if (result.status === 'failed') throw new AppError('n8n_unavailable', 'The first full sync failed; it is retried')
    if (result.status === 'partial') this.#log.warn({}, 'live tail: the first full sync was partial; the failed workflows catch up at their next sync')
    await this.#store.liveTailIngest(serviceScope, epoch, { items: [], vanished: [], state: { backfilled: true } }, new Date(this.#now()))
    this.#ticker.fenceConfirmed()
  }

  #epochOrThrow (): string {
    if (this.#epoch === null) throw new AppError('conflict', 'fenced: not leading')
    return this.#epoch
  }

  // ---- housekeeping (leader) ----------------------------------------------------------------

  /** Starts due housekeeping in the background (one run at a time; ticks go on meanwhile). */
  #maybeHousekeeping (): void {
    if (this.#housekeeping !== null) return
    const now = this.#now()
    const c = this.#opts.cleanup
    const cleanupDue = c !== undefined && c.everyMs > 0 && (this.#cleanupAt === null || now - this.#cleanupAt >= c.everyMs)
    const p = this.#opts.pending
    const pendingDue = p !== undefined && now >= this.#pendingNextCheck
    if (!cleanupDue && !pendingDue) return
    const epoch = this.#epoch
    this.#housekeeping = (async () => {
      if (cleanupDue && c && epoch !== null) {
        try {
          // Recorded first: a cleanup that keeps failing must not run on every tick.
          await this.#store.liveTailIngest(serviceScope, epoch, { items: [], vanished: [], state: { cleanup_at: new Date(now).toISOString() } }, new Date(now))
          this.#cleanupAt = now
          await c.run()
          this.#log.info({}, 'live tail: scheduled cleanup done')
        } catch (err) {
          this.#log.warn({ err }, 'live tail: scheduled cleanup failed')
        }
      }
      if (pendingDue && p) await this.#retryPending(p, now)
    })().finally(() => { this.#housekeeping = null })
  }

  async #retryPending (p: NonNullable<LiveTailOptions['pending']>, now: number): Promise<void> {
    this.#pendingNextCheck = now + (p.everyMs ?? 30_000)
    let ids: string[]
    try {
      ids = await p.list()
    } catch (err) {
      this.#log.warn({ err }, 'live tail: listing pending deploys failed')
      return
    }
    const known = new Set(ids)
    for (const id of this.#pendingBackoff.keys()) if (!known.has(id)) this.#pendingBackoff.delete(id)
    for (const id of ids) {
      if (this.#stopping || this.#role !== 'leader') return
      const b = this.#pendingBackoff.get(id) ?? { attempts: 0, nextAt: 0 }
      if (b.nextAt > now) continue
      let status = 'pending'
      try {
        status = await p.redeploy(id)
      } catch (err) {
        this.#log.warn({ err, workflow_id: id }, 'live tail: retrying a pending deploy failed')
      }
      if (status === 'pending') {
        b.attempts++
        const step = Math.min(p.maxBackoffMs ?? 30 * 60_000, (p.everyMs ?? 30_000) * 2 ** (b.attempts - 1))
        b.nextAt = now + step / 2 + this.#random() * step / 2
        this.#pendingBackoff.set(id, b)
      } else {
        this.#pendingBackoff.delete(id)
        this.#log.info({ workflow_id: id, status }, 'live tail: pending deploy retried')
      }
    }
  }
}

function errorCode (err: unknown): string {
  return isAppError(err) ? err.code : 'internal'
}
