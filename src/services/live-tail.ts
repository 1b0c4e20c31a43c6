// The live tail: n8n's executions into the ledger continuously, without anyone calling /sync.
// No Fastify here (the plugin src/plugins/live-tail.ts drives it).
//
// ONE TAIL PER DEPLOYMENT. Every replica runs a LiveTail; the one holding the `live_tail` lock
// (a session advisory lock in Postgres mode, a renewed lease in Supabase mode: Store.withLock)
// leads, the others retry the lock every `standbyMs`. A leader that dies (SIGKILL included) loses
// the lock with its database session (or when its lease runs out), and a standby takes over.
// Fencing: on taking the lock the leader claims a new epoch (live_tail_claim); every write names
// it and the database refuses a stale one in the write's own transaction, so a leader cut off by a
// partition can never write after its successor claimed. Leaders confirm their epoch at least
// every `fenceCheckMs` (a write, or an empty fenced call) and step down when it is gone.
//
// WHAT A TICK READS (every `intervalMs`; idle cost: 2 n8n calls, whatever the number of
// workflows, and no database write):
//   1. R: the running list (`GET /executions?status=running`, all pages; usually one);
//   2. L: the instance's execution list, newest first, page after page (in the same tick) down to
//      the frontier F.
// THE FRONTIER (live_tail_state.frontier) has the invariant of the engine's stop point, for every
// workflow at once: every execution with an id <= F is final and in the ledger, gone, or an open
// ledger row that the tail re-checks. After a tick, F becomes P, the newest id listed by the
// PREVIOUS tick's L (read before this tick's R). Why that is exact: an execution X with
// F < id(X) <= P started before the previous L (ids follow start order). If X is visible in this
// tick's L, it was read (it is above F). If it is hidden there, it is active, and since it
// started before the previous L, which was before R, it was active at R: it is in R, and becomes
// an open row. (A run whose stored status is still `new` is not in R but not hidden either: the
// previous L showed it, and its open row was written then.) The previous L doubles as the
// engine's "ceiling" call, so a tick needs no third call; the price is that each execution is
// listed by two ticks, the second time skipped in memory (a final status never changes).
// OPEN ROWS (not final: running, new, waiting, unknown) of the workflows a row owns are tracked
// in memory (loaded from the ledger when a replica starts leading): while a run is in R or in L
// nothing is asked; when it has left both it is fetched by id (`GET /executions/{id}`), then
// again with backoff (doubling from the interval to `recheckMaxMs`: a Wait node waiting for days
// costs one call per `recheckMaxMs`); a 404 marks it vanished. So a hidden run is counted once,
// when it finishes, within one interval of leaving R.
// WRITES: one transaction per tick (live_tail_ingest): the items, grouped by n8n workflowId onto
// the row that owns that id (the row's n8n_workflow_id; other workflows are ignored), through
// ingest_executions (the same ledger rules as /sync: exact counts from the rows actually changed,
// a final status never reverts), and the new frontier. Stop points of /sync are not moved: a
// later /sync re-reads what the tail wrote and writes nothing (no double count). A failed tick
// writes nothing and the next one reads the same window again.
// FIRST START: a deployment whose tail never ran reads the newest id C0, stores it as the frontier,
// runs the engine's full sync (`backfill`, i.e. /sync/all: everything <= its own ceiling >= C0 is
// then handled) and marks the deployment backfilled; a leader that dies during the backfill
// leaves it to the next one.
// n8n WITHOUT A RUNNING LIST (< 1.113): R is unavailable, so a run hidden while the frontier
// passes it would only be seen by a sync; the leader then also runs the full sync every
// `fallbackSyncMs` (the engine's own fallback is exact for it).
// DOWN AND BACK: a failed tick backs off (doubling from the interval, capped at `maxBackoffMs`,
// with jitter) and the next successful one reads everything since the frontier: nothing is lost.
// HOUSEKEEPING (leader only): the cleanup every `cleanupIntervalMs` (its last run is stored with
// the tail's state, so a change of leader does not restart the clock), and `pending` deploys
// (n8n was down when they were made) retried with a per-workflow backoff.

import { randomUUID } from 'node:crypto'
import type { Store } from '../store/store.ts'
import { serviceScope } from '../store/scope.ts'
import type { ExecutionInput } from '../store/sync-store.ts'
import type { LiveTailWrite, TailIdentity } from '../store/live-tail-store.ts'
import { AppError, isAppError } from '../errors.ts'
import { isN8nNotFound } from './n8n-client.ts'
import { identityOf } from './ownership.ts'
import type { N8nClient, N8nExecution } from './n8n-client.ts'

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

interface Open {
  workflowId: string
  status: string
  /** A row owns its workflow (else tracked only so that it is not sent again). */
  owned: boolean
  checks: number
  nextCheckAt: number
}

const PAGE = 250
const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])
const ID_RE = /^[0-9]{1,18}$/
const RUNNING_LIST_RETRY_MS = 10 * 60_000
const OPEN_LOAD_LIMIT = 10_000
// How long what n8n's copy of a workflow carries (name, marker) is trusted before it is asked again.
const IDENTITY_TTL_MS = 10 * 60_000

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

  // leader state
  #role: TailRole = 'off'
  #state: TailStatus['state'] = 'off'
  #epoch: string | null = null
  #frontier: bigint | null = null
  #pendingTop: bigint | null = null
  #finalSeen = new Set<string>()
  #open = new Map<string, Open>()
  #lastGoodTickStart: number | null = null
  #lastTickAt: number | null = null
  #errors = 0
  #retryIn = 0
  #lastError: string | null = null
  #lastFence = 0
  #runningUnsupportedUntil = 0
  #runningSupport: TailStatus['running_list'] = 'unknown'
  #lastFallbackSync = 0
  #cleanupAt: number | null = null
  #pendingNextCheck = 0
  #pendingBackoff = new Map<string, { attempts: number, nextAt: number }>()
  #housekeeping: Promise<void> | null = null
  /** n8n workflow id → its name and marker (null: n8n has no such workflow), and when it was read. */
  #identities = new Map<string, { ident: TailIdentity | null, at: number }>()

  constructor (opts: LiveTailOptions) {
    this.#store = opts.store
    this.#n8n = opts.n8n
    this.#log = opts.logger
    this.#interval = Math.max(1, Math.trunc(opts.intervalMs))
    this.#opts = opts
    this.#holder = opts.holder ?? `tail:${randomUUID()}`
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
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
    return {
      role: this.#role,
      state: this.#state,
      interval_ms: this.#interval,
      epoch: this.#epoch,
      frontier: this.#frontier === null ? null : this.#frontier.toString(),
      lag_seconds: this.#role !== 'leader' || this.#lastGoodTickStart === null ? null : Math.max(0, (now - this.#lastGoodTickStart) / 1000),
      last_tick_at: this.#lastTickAt === null ? null : new Date(this.#lastTickAt).toISOString(),
      consecutive_errors: this.#errors,
      last_error: this.#lastError,
      retry_in_ms: this.#state === 'backoff' ? this.#retryIn : null,
      running_list: this.#runningSupport
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
    this.#lastFence = this.#now()
    this.#frontier = claimed.frontier === null ? null : BigInt(claimed.frontier)
    this.#pendingTop = this.#frontier
    this.#finalSeen = new Set()
    this.#open = new Map()
    this.#identities = new Map()
    this.#errors = 0
    this.#lastGoodTickStart = null
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
            await this.#loadOpen()
            // In the background: a new leader ticks at once (unknown ids are asked for one by one
            // meanwhile), so a takeover is not held up by listing every workflow.
            identityLoad ??= this.#loadIdentities().catch((err: unknown) => { this.#log.warn({ err }, 'live tail: listing the workflows\' markers failed; they are read one by one') })
            loaded = true
          }
          if (this.#frontier === null || !backfilled) {
            await this.#backfill()
            backfilled = true
          }
          await this.#tick(started)
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

  async #loadOpen (): Promise<void> {
    const rows = await this.#store.liveTailOpenExecutions(serviceScope, OPEN_LOAD_LIMIT)
    const now = this.#now()
    for (const r of rows) this.#open.set(r.n8n_execution_id, { workflowId: r.n8n_workflow_id, status: r.status, owned: true, checks: 0, nextCheckAt: now })
  }

  /**
   * Ownership (src/services/ownership.ts): the tail writes an execution only to the row whose
   * marker n8n's copy of the workflow carries. Read for every `[USR-` workflow when a replica
   * starts leading (one listing, ⌈n/250⌉ calls), then per workflow id when an unknown one shows up
   * or its entry is older than IDENTITY_TTL_MS.
   */
  async #loadIdentities (): Promise<void> {
    const now = this.#now()
    this.#opts.onN8nCall?.()
    for await (const wf of this.#n8n.iterateWorkflows({ name: '[USR-', limit: PAGE })) {
      if (this.#stopping) return
      const c = this.#identities.get(wf.id)
      if (c === undefined || c.at < now) this.#identities.set(wf.id, { ident: toIdentity(wf), at: now })
    }
  }

  async #identitiesFor (ids: Set<string>, counted: <T>(fn: () => Promise<T>) => Promise<T>): Promise<Record<string, TailIdentity>> {
    const now = this.#now()
    const out: Record<string, TailIdentity> = {}
    const missing: string[] = []
    for (const id of ids) {
      const c = this.#identities.get(id)
      if (c === undefined || now - c.at > IDENTITY_TTL_MS) missing.push(id)
      else if (c.ident !== null) out[id] = c.ident
    }
    let next = 0
    const lane = async (): Promise<void> => {
      for (let id = missing[next++]; id !== undefined; id = missing[next++]) {
        const wid = id
        try {
          const ident = toIdentity(await counted(() => this.#n8n.getWorkflow(wid)))
          this.#identities.set(wid, { ident, at: now })
          out[wid] = ident
        } catch (err) {
          if (!isN8nNotFound(err)) throw err
          this.#identities.set(wid, { ident: null, at: now })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(16, missing.length) }, lane))
    return out
  }

  /** First start of a deployment: the frontier, then the full sync (see the header). */
  async #backfill (): Promise<void> {
    const epoch = this.#epochOrThrow()
    if (this.#frontier === null) {
      const top = await this.#call(() => this.#n8n.listExecutions({ limit: 1 }))
      const c0 = top.data[0]?.id ?? '0'
      if (!ID_RE.test(c0)) throw new AppError('n8n_error', 'n8n returned an execution id that is not numeric')
      const r = await this.#store.liveTailIngest(serviceScope, epoch, { items: [], vanished: [], state: { frontier: c0 } }, new Date(this.#now()))
      this.#frontier = BigInt(r.frontier ?? c0)
      this.#pendingTop = this.#frontier
    }
    this.#state = 'backfill'
    this.#log.info({ frontier: this.#frontier.toString() }, 'live tail: first full sync of this deployment')
    const result = await this.#opts.backfill()
    if (result.status === 'failed') throw new AppError('n8n_unavailable', 'The first full sync failed; it is retried')
    if (result.status === 'partial') this.#log.warn({}, 'live tail: the first full sync was partial; the failed workflows catch up at their next sync')
    await this.#store.liveTailIngest(serviceScope, epoch, { items: [], vanished: [], state: { backfilled: true } }, new Date(this.#now()))
    this.#lastFence = this.#now()
  }

  #epochOrThrow (): string {
    if (this.#epoch === null) throw new AppError('conflict', 'fenced: not leading')
    return this.#epoch
  }

  async #call<T> (fn: () => Promise<T>): Promise<T> {
    this.#opts.onN8nCall?.()
    return await fn()
  }

  // ---- one tick ----------------------------------------------------------------------------

  async #tick (started: number): Promise<void> {
    const epoch = this.#epochOrThrow()
    const F = this.#frontier ?? -1n
    let calls = 0
    const counted = async <T>(fn: () => Promise<T>): Promise<T> => { calls++; return await this.#call(fn) }

    // 1. R, before L (see the header).
    const running = await this.#runningList(counted)

    // 2. L: newest first down to the frontier, as many pages as it takes.
    const listed: N8nExecution[] = []
    let top: bigint | null = null
    let last: bigint | null = null
    let cursor: string | undefined
    for (;;) {
      const page = await counted(() => this.#n8n.listExecutions(cursor === undefined ? { limit: PAGE } : { limit: PAGE, cursor }))
      let reached = false
      for (const e of page.data) {
        if (!ID_RE.test(e.id)) throw new AppError('n8n_error', 'n8n returned an execution id that is not numeric')
        const id = BigInt(e.id)
        // The stop rule relies on newest-first order; refuse anything else rather than miss runs.
        if (last !== null && id >= last) throw new AppError('n8n_error', 'n8n returned executions out of order')
        last = id
        top ??= id
        if (id <= F) {
          reached = true
          break
        }
        listed.push(e)
      }
      if (reached || page.nextCursor === null) break
      cursor = page.nextCursor
    }

    // 3. What is new: running entries first (older snapshot), then the list (its answer wins).
    const items: ExecutionInput[] = []
    const inRunning = new Set<string>()
    for (const e of running ?? []) {
      if (!ID_RE.test(e.id)) throw new AppError('n8n_error', 'n8n returned an execution id that is not numeric')
      inRunning.add(e.id)
      if (this.#open.get(e.id)?.status !== e.status) items.push(toInput(e))
    }
    const inList = new Set<string>()
    const finalNow = new Set<string>()
    for (const e of listed) {
      inList.add(e.id)
      if (FINAL.has(e.status)) {
        finalNow.add(e.id)
        if (this.#finalSeen.has(e.id)) continue // listed final by the previous tick, and written then
      } else if (this.#open.get(e.id)?.status === e.status) {
        continue
      }
      items.push(toInput(e))
    }

    // 4. Open runs that left both lists: ask for them by id (with backoff).
    const vanished: LiveTailWrite['vanished'] = []
    const now = this.#now()
    const due: Array<[string, Open]> = []
    for (const [id, o] of this.#open) {
      if (inRunning.has(id) || inList.has(id)) {
        o.checks = 0
        o.nextCheckAt = now
        continue
      }
      if (!o.owned) {
        this.#open.delete(id) // another workflow's run: never asked for
        continue
      }
      if (o.nextCheckAt <= now && due.length < (this.#opts.recheckPerTick ?? 50)) due.push([id, o])
    }
    for (const [id, o] of due) {
      try {
        const e = await counted(() => this.#n8n.getExecution(id))
        if (FINAL.has(e.status) || e.status !== o.status) items.push(toInput(e))
        if (!FINAL.has(e.status)) {
          o.checks++
          o.nextCheckAt = now + Math.min(this.#opts.recheckMaxMs ?? 60_000, this.#interval * 2 ** o.checks)
        }
      } catch (err) {
        if (!isN8nNotFound(err)) throw err
        vanished.push({ workflowId: o.workflowId, id })
      }
    }

    // 5. One fenced transaction: the items (of workflows whose n8n copy is a row's own) and the
    // new frontier.
    const wfIds = new Set<string>()
    for (const e of items) if (e.workflowId) wfIds.add(e.workflowId)
    for (const v of vanished) wfIds.add(v.workflowId)
    const identities = wfIds.size === 0 ? {} : await this.#identitiesFor(wfIds, counted)
    const nextF = this.#pendingTop !== null && this.#pendingTop > F ? this.#pendingTop : null
    const write: LiveTailWrite = { items, vanished, state: nextF === null ? {} : { frontier: nextF.toString() }, identities }
    let ingested = 0
    if (items.length > 0 || vanished.length > 0 || nextF !== null || now - this.#lastFence >= this.#fenceCheckMs()) {
      const r = await this.#store.liveTailIngest(serviceScope, epoch, write, new Date(now))
      this.#lastFence = this.#now()
      ingested = r.inserted + r.updated
      const owned = new Set(r.owned)
      for (const e of items) {
        if (FINAL.has(e.status)) {
          this.#open.delete(e.id)
        } else {
          const o = this.#open.get(e.id)
          if (o) o.status = e.status
          else this.#open.set(e.id, { workflowId: e.workflowId ?? '', status: e.status, owned: owned.has(e.workflowId ?? ''), checks: 0, nextCheckAt: now })
        }
      }
      for (const v of vanished) this.#open.delete(v.id)
      if (r.frontier !== null) this.#frontier = BigInt(r.frontier)
    }
    if (top !== null && (this.#pendingTop === null || top > this.#pendingTop)) this.#pendingTop = top
    this.#finalSeen = finalNow
    this.#lastGoodTickStart = started
    this.#lastTickAt = this.#now()
    this.#opts.onTick?.({ ok: true, durationMs: this.#lastTickAt - started, n8nCalls: calls, ingested })

    if (running === null && this.#now() - this.#lastFallbackSync >= (this.#opts.fallbackSyncMs ?? 10 * 60_000)) {
      this.#lastFallbackSync = this.#now()
      await this.#opts.backfill()
    }
  }

  #fenceCheckMs (): number {
    return this.#opts.fenceCheckMs ?? Math.min(5000, 3 * this.#interval)
  }

  /** All pages of the running list; null when this n8n cannot list running executions. */
  async #runningList (counted: <T>(fn: () => Promise<T>) => Promise<T>): Promise<N8nExecution[] | null> {
    if (this.#now() < this.#runningUnsupportedUntil) return null
    const out: N8nExecution[] = []
    let cursor: string | undefined
    try {
      for (;;) {
        const page = await counted(() => this.#n8n.listExecutions(cursor === undefined ? { status: 'running', limit: PAGE } : { status: 'running', limit: PAGE, cursor }))
        for (const e of page.data) {
          // A final status here: this n8n ignores the filter, so the list is not what we need.
          if (FINAL.has(e.status)) return this.#unsupported('n8n ignored status=running')
          out.push(e)
        }
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
    } catch (err) {
      if (isAppError(err) && err.code === 'n8n_rejected') return this.#unsupported(err.message)
      throw err
    }
    this.#runningSupport = 'supported'
    return out
  }

  #unsupported (why: string): null {
    this.#runningUnsupportedUntil = this.#now() + RUNNING_LIST_RETRY_MS
    this.#runningSupport = 'unsupported'
    this.#log.warn({ reason: why }, 'live tail: n8n cannot list running executions; a full sync also runs every few minutes')
    return null
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

function toInput (e: N8nExecution): ExecutionInput {
  return {
    id: e.id,
    status: e.status,
    mode: e.mode,
    finished: e.finished,
    startedAt: e.startedAt,
    stoppedAt: e.stoppedAt,
    workflowId: e.workflowId
  }
}

function toIdentity (wf: { name: string, staticData?: Record<string, unknown> | null }): TailIdentity {
  const i = identityOf(wf)
  return { name: i.name, row_id: i.markerRowId, user_id: i.markerUserId }
}

function errorCode (err: unknown): string {
  return isAppError(err) ? err.code : 'internal'
}
