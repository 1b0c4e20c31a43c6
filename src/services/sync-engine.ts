// The sync engine: n8n execution results into the Postgres ledger, exact, incremental and safe
// under failure. No Fastify here: routes, cron, benchmarks and tests drive it directly.
//
// THE STOP POINT (mvp_workflows.execution_floor_id, "the floor")
// n8n lists executions newest first by id; ids come from one instance-wide sequence assigned when
// a run STARTS; runs that are active (running, or a resumed `waiting` one) are hidden from the
// list. So a run hidden during one sync later appears BELOW ids already seen, and a stop point
// at "the highest id seen" would miss it forever. The floor is therefore defined as:
//
//   INVARIANT: every execution of the workflow with an id <= floor is either final and in the
//   ledger, or gone from n8n, or an open ledger row (waiting/new/running/unknown) that the engine
//   re-checks by id on every sync.
//
// Each sync reads the workflow's list newest first and stops at the first id <= floor; everything
// above it is (re-)upserted, which writes nothing for unchanged rows. At the end of a complete
// pass (in the transaction of its last page) the new floor is
//
//   min( C, just below some open ledger rows ),   never lower than the old floor
//
// where C ("ceiling") is an id n8n had already assigned before this sync read its running list.
// Why C makes it exact (n8n >= 1.113, where `GET /executions?status=running` lists active runs):
// per sync, ONE call `GET /executions?limit=250` gives C (the newest listed id), THEN the running
// list `GET /executions?status=running` (all pages) gives every run active at that moment R, THEN
// each workflow is listed (time L > R). A run hidden at L was active at L. If it started before R
// it was active at R, so it is in the running list, or it was still `new` (stored status not yet
// `running`, not yet hidden) and is in C's page, whose non-final runs join the running list: it
// is written to the ledger as an open row (open rows are tracked, see below). If it started after R its id is greater than
// every id assigned before R, in particular greater than C >= floor, so the next pass re-reads it.
// A run visible at L was read (it is above the old floor, or below it and covered by the
// invariant). New executions always get ids above C and final statuses never change, so a floor
// that was valid stays valid, and the larger of two valid floors is valid: concurrent or
// interrupted passes cannot break it.
// Open rows (waiting, new, running, unknown) are tracked in one of two ways, chosen per pass by
// cost in n8n calls (ingest_executions): the floor stays just below them, so the next list pass
// re-reads them (free while they are in the first page), or they are re-checked with
// `GET /executions/{id}` (a Wait node waiting for days must not make every sync re-read a long
// history). A run deleted in n8n while open is marked vanished and no longer asked for.
//
// n8n < 1.113 rejects `status=running` (400). Fallback, exact under a stated assumption: no run
// stays hidden longer than `runningGraceMs` (default 24 h; keep it above n8n's execution timeout
// plus clock skew). Ids follow start order, so the floor stays below every execution that started
// within that window (in addition to C). Cost: each sync re-reads the last window of each
// workflow's executions (still writing nothing when nothing changed).
//
// CRASH SAFETY: each n8n page is written in one transaction (`ingest_executions`: ledger upsert +
// counts + last_execution_*; possibly together with other workflows' pages), and the floor moves
// only in the transaction of the page that completes the pass, after every older page committed. A crash anywhere leaves counts equal to the ledger and
// the floor where a full re-read down to it catches everything; the next sync does exactly that.
//
// COST of a re-sync with nothing new: one list call per workflow (the first page already reaches
// the floor), plus per sync one ceiling call, the running list (usually one page) and one
// `GET /workflows?name=[USR-xxxxxxxx]` page per 250 workflows for drift; nothing is written but the
// sync_logs row. mvp_workflows (counts, last_execution_*, floor, last_sync_at) is written only
// when something changed: last_sync_at is the last sync that found something new for the
// workflow (every sync is in sync_logs).
//
// CONCURRENCY AND WRITES: at most `concurrency` (N8N_CONCURRENCY) n8n calls are in flight per
// engine; a workflow gives its call slot back while its page is written, so the next workflow's
// call starts meanwhile (at most 2 x concurrency workflows in progress, each holding one page).
// The pages of one sync are written by group commit (IngestBatcher): a page that finds a free
// lane is written at once, pages arriving meanwhile go together in one transaction
// (ingest_executions_batch: one round trip, one commit), retried one by one if the batch fails.
//
// INSTANCE SCAN (/sync/all, `syncAllStrategy: 'scan'`, the default): instead of one list per
// workflow, ONE newest-first pass over the instance's list (no workflowId), after the same C and
// running list, down to the lowest stop point of the workflows in it; items are grouped by
// workflowId (other workflows, not ours or not in this sync, are ignored). It is the same pass
// per workflow, read through a different window, so the argument above holds item by item: once
// the scan has gone below a workflow's stop point, every execution above it has been read, and
// its pass is complete. Writes: items are buffered per workflow (as small JSON strings) and
// written in set-based batches (ingest_scan_batch); a workflow's buffer goes out when its pass
// completes (with its running-list entries first, and the stop point moving to C in the same
// transaction), or earlier as a partial chunk when it holds a page or when the buffers together
// exceed `scanBufferLimit` (memory bound; the stop point does not move). Rounds of writes run one
// at a time while the next page is read, so a workflow's chunks commit in order and the one that
// moves its stop point last; a workflow whose chunk fails fails alone (its later chunks are
// dropped, its stop point stays). The scan never holds a stop point below open rows (the scan's
// depth is the lowest stop point of ALL workflows): they are re-checked by id, except those the
// scan itself just saw. A workflow with nothing new, no active run and no open row (idle) has a
// complete pass too; its stop point is raised to C in workflow_scan_floors (not mvp_workflows:
// no event, Realtime or updated_at for an unchanged row) once it lags C by more than
// `scanLagIds`, else every later scan would have to read down to the oldest idle stop point.
// Workflows that never completed a pass join the scan when reading the instance to its bottom
// (at most stop/250 more pages: ids are never reused) costs no more than their own lists
// (⌈n/concurrency⌉ waves), else they get their own list as in a user's sync. A failed scan page
// fails the workflows whose pass was not complete yet (what was written stays; the next sync
// re-reads from their stop points). Cost with nothing new: C, the running list, the drift
// listing and ONE scan page, whatever the number of workflows (bench/sync.ts, P2).

import type { Database } from '../db/database.ts'
import { Semaphore } from '../lib/semaphore.ts'
import { PostgresStore } from '../store/postgres-store.ts'
import { serviceScope } from '../store/scope.ts'
import type { LockSpec, Store } from '../store/store.ts'
import type { Scope } from '../store/scope.ts'
import * as store from '../store/sync-store.ts'
import type { ExecutionInput, IngestJob, IngestOptions, IngestResult, ScanJob, SyncTarget } from '../store/sync-store.ts'
import { AppError, isAppError } from '../errors.ts'
import { isN8nNotFound } from './n8n-client.ts'
import { identityOf, notOwnedReason } from './ownership.ts'
import type { N8nIdentity } from './ownership.ts'
import type { N8nClient, N8nExecution, N8nExecutionPage } from './n8n-client.ts'

export type SyncN8n = Pick<N8nClient,
  'listExecutions' | 'iterateExecutionPages' | 'getExecution' | 'getWorkflow' | 'iterateWorkflows' |
  'activateWorkflow' | 'deactivateWorkflow'>

type LogFn = (obj: object, msg?: string) => void
export interface SyncLogger { info: LogFn, warn: LogFn, error: LogFn }

export interface SyncHooks {
  /** After page `pageIndex` of a workflow's pass was committed (tests throw here). */
  afterPage?(workflowId: string, pageIndex: number): Promise<void> | void
  /** Instance scan: after page `pageIndex` was read and what it completed was committed. */
  afterScanPage?(pageIndex: number): Promise<void> | void
  /** After all work, before the sync_logs row is written. */
  beforeLog?(): Promise<void> | void
}

export interface SyncEngineOptions {
  /** Where the ledger lives (Postgres or Supabase): every read and write goes through it. */
  store?: Store
  /** Shorthand for `store: new PostgresStore(db)`. */
  db?: Database
  n8n: SyncN8n
  logger: SyncLogger
  /** n8n calls in flight across every sync of this engine (N8N_CONCURRENCY); workflows in progress: 2x. */
  concurrency: number
  /** Retries a `pending` deploy (the workflow service provides it). */
  redeploy?: (scope: Scope, workflowId: string) => Promise<void>
  now?: () => Date
  hooks?: SyncHooks
  /** Fallback for n8n without a running list: the longest a run may stay hidden. Default 24 h. */
  runningGraceMs?: number
  /** Syncs running at once in this process; each holds one pooled connection for its lock. Default 4. */
  maxParallelSyncs?: number
  /** How /sync/all reads n8n: one instance scan (default) or one pass per workflow. */
  syncAllStrategy?: SyncAllStrategy
  /** Instance scan: executions held in memory before they are written as partial chunks. Default 20,000. */
  scanBufferLimit?: number
  /** Instance scan: an idle workflow's stop point is raised once it lags the ceiling by more ids than this. Default 1,000. */
  scanLagIds?: number
  /** Workflows (pages) written in one transaction. Default 250. */
  ingestBatchMax?: number
  /** Transactions writing pages at once per sync (group commit: jobs queue while all are busy). Default 2. */
  ingestLanes?: number
}

/**
 * `scan`: one newest-first pass over the instance's execution list (no workflowId) down to the
 * lowest stop point of all workflows, grouped by workflow; `per_workflow`: one list per workflow,
 * as a user's sync does. See the bench (npm run bench:sync) for why `scan` is the default.
 */
export type SyncAllStrategy = 'scan' | 'per_workflow'

export type SyncType = 'user' | 'all' | 'workflows'
export type SyncStatus = 'success' | 'partial' | 'failed'

export interface SyncError {
  workflow_id: string
  code: string
  message: string
}

export interface SyncResult {
  sync_log_id: string
  status: SyncStatus
  workflows_synced: number
  workflows_failed: number
  executions_ingested: number
  duration_ms: number
  errors: SyncError[]
  /** Why the sync was not a success (the sync log's `error`); null on success. */
  error: string | null
}

export interface DriftEntry {
  workflow_id: string
  n8n_workflow_id: string
  kind: 'missing_in_n8n' | 'active'
  /** active drift: the database's value (the truth) and what n8n had. */
  database_active?: boolean
  n8n_active?: boolean
  repaired: boolean
  error?: string
  /** missing_in_n8n because n8n's workflow is not the row's own: why. */
  reason?: string
}

const PAGE = 250
/** Fresh workflows join the instance scan at up to this many times the latency of their own lists (see #scanAll). */
const SCAN_WAVES_FACTOR = 4n
const MAX_ERRORS = 200
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ID_RE = /^[0-9]{1,18}$/
const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])
const RUNNING_LIST_RETRY_MS = 10 * 60_000
// A subset sync of a few workflows asks for each one instead of listing the user's workflows.
const DIRECT_LOOKUP_MAX = 3

interface Snapshot {
  ceiling: string
  /** n8n workflow id → its active runs; null: n8n cannot list them (fallback). */
  running: Map<string, N8nExecution[]> | null
  /** n8n workflow id → what the drift listing says of it; null: look each workflow up. */
  workflows: Listing | null
}

/** One workflow of the drift listing: its active flag and what proves it is a row's own. */
interface ListedWorkflow extends N8nIdentity {
  active: boolean
}
type Listing = Map<string, ListedWorkflow>

interface RunState {
  scope: Scope
  syncedAt: Date
  batcher: IngestBatcher
  errors: SyncError[]
  drift: DriftEntry[]
  synced: number
  failed: number
  ingested: number
}

/**
 * Group commit of ingest jobs of one sync (one scope): a job that finds a free lane is written at
 * once; jobs arriving while the lanes are busy are written together by the next free lane, in one
 * transaction and one round trip (ingest_executions_batch). A failed batch is retried job by job,
 * so one workflow's error never fails another's. A workflow has at most one job queued at a time
 * (its pages are written in order), so batching never reorders a workflow's pages.
 */
class IngestBatcher {
  readonly #store: Store
  readonly #scope: Scope
  readonly #syncedAt: Date
  readonly #max: number
  readonly #lanes: number
  #busy = 0
  #queue: Array<{ job: IngestJob, resolve: (r: IngestResult) => void, reject: (err: unknown) => void }> = []

  constructor (store: Store, scope: Scope, syncedAt: Date, max: number, lanes: number) {
    this.#store = store
    this.#scope = scope
    this.#syncedAt = syncedAt
    this.#max = Math.max(1, max)
    this.#lanes = Math.max(1, lanes)
  }

  ingest (job: IngestJob): Promise<IngestResult> {
    return new Promise<IngestResult>((resolve, reject) => {
      this.#queue.push({ job, resolve, reject })
      this.#pump()
    })
  }

  /** Jobs written together, all or nothing; on an error, each job alone. Results in job order. */
  async writeAll (jobs: IngestJob[]): Promise<Array<{ ok: true, result: IngestResult } | { ok: false, error: unknown }>> {
    if (jobs.length > 1) {
      try {
        const rs = await this.#store.ingestExecutionsBatch(this.#scope, jobs, this.#syncedAt)
        return rs.map((result) => ({ ok: true as const, result }))
      } catch {
        // retried one by one below: the error belongs to one of them (or to all, if the database is down)
      }
    }
    const out: Array<{ ok: true, result: IngestResult } | { ok: false, error: unknown }> = []
    for (const j of jobs) {
      try {
        out.push({ ok: true, result: await this.#store.ingestExecutions(this.#scope, j.workflowId, j.executions, this.#syncedAt, j.options ?? {}) })
      } catch (error) {
        out.push({ ok: false, error })
      }
    }
    return out
  }

  #pump (): void {
    while (this.#busy < this.#lanes && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#max)
      this.#busy++
      void this.writeAll(batch.map((b) => b.job)).then((rs) => {
        rs.forEach((r, i) => {
          const b = batch[i]
          if (!b) return
          if (r.ok) b.resolve(r.result)
          else b.reject(r.error)
        })
      }, (err: unknown) => {
        for (const b of batch) b.reject(err)
      }).finally(() => {
        this.#busy--
        this.#pump()
      })
    }
  }
}

/** One workflow's state in an instance scan. */
interface ScanWf {
  t: SyncTarget
  n8nId: string
  /** The effective stop point; -1 for a workflow that never completed a pass (read everything). */
  floor: bigint
  /** From the running list (executionJson): written first, in the workflow's first job. */
  running: string[]
  runningPending: boolean
  /** Items read and not written yet, as executionJson strings (one small string each). */
  buf: string[]
  /** Ids of open executions seen in this pass (list or running list): no re-check by id needed. */
  openSeen: Set<string> | null
  /** Anything read for it in this pass: its pass ends with an ingest (else it is idle). */
  touched: boolean
  /** It has open ledger rows: its pass ends with an ingest, which lists them for re-checking. */
  hasOpen: boolean
  /** The scan went below its stop point: its pass is complete (written or idle). */
  passed: boolean
  /** n8n's active flag, once its n8n copy was verified to be the row's own. */
  n8nActive: boolean | null
  error: unknown
}

/**
 * The pages of `pages`, in order; the next one is requested before a page is handed out when
 * `ahead(page)` says it will be needed, so its round trip overlaps the caller's work on this one.
 * Asking for the next page always gets it (read ahead or not); ending early drops a page read
 * ahead (its failure included).
 */
async function * readAhead<T> (pages: AsyncGenerator<T, void, undefined>, ahead: (page: T) => boolean): AsyncGenerator<T, void, undefined> {
  try {
    let next = pages.next()
    for (;;) {
      const r = await next
      if (r.done === true) return
      const early = ahead(r.value)
      if (early) {
        next = pages.next()
        next.catch(() => {}) // awaited on the next turn, or dropped with the generator
      }
      yield r.value
      if (!early) next = pages.next()
    }
  } finally {
    await pages.return(undefined).catch(() => {})
  }
}

function compareIds (a: string, b: string): number {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

function n8nShapeError (message: string): AppError {
  return new AppError('n8n_error', message)
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

function userTag (userId: string): string {
  return `[USR-${userId.replace(/-/g, '').slice(0, 8).toLowerCase()}]`
}

export class SyncEngine {
  readonly #store: Store
  readonly #n8n: SyncN8n
  readonly #log: SyncLogger
  readonly #redeploy: SyncEngineOptions['redeploy']
  readonly #now: () => Date
  readonly #hooks: SyncHooks
  readonly #graceMs: number
  /** Workflows in progress (each holds at most one page in memory). */
  readonly #work: Semaphore
  /** n8n calls in flight: N8N_CONCURRENCY. A workflow's transaction does not hold one. */
  readonly #n8nSlots: Semaphore
  readonly #concurrency: number
  readonly #syncSlots: Semaphore
  readonly #allStrategy: SyncAllStrategy
  readonly #scanBufferLimit: number
  readonly #scanLagIds: bigint
  readonly #batchMax: number
  readonly #lanes: number
  readonly #inflight = new Map<string, { ids: Set<string> | null, promise: Promise<SyncResult> }>()
  #runningUnsupportedUntil = 0

  constructor (opts: SyncEngineOptions) {
    if (opts.store) this.#store = opts.store
    else if (opts.db) this.#store = new PostgresStore(opts.db)
    else throw new TypeError('SyncEngine needs a store (or a db)')
    this.#n8n = opts.n8n
    this.#log = opts.logger
    this.#redeploy = opts.redeploy
    this.#now = opts.now ?? (() => new Date())
    this.#hooks = opts.hooks ?? {}
    this.#graceMs = opts.runningGraceMs ?? 24 * 3600_000
    // A workflow gives its n8n slot back while its page is written, so the next workflow's call
    // starts meanwhile; at most twice as many workflows are in progress (memory bound).
    this.#work = new Semaphore(Math.max(1, 2 * Math.trunc(opts.concurrency)))
    this.#n8nSlots = new Semaphore(Math.max(1, Math.trunc(opts.concurrency)))
    this.#concurrency = Math.max(1, Math.trunc(opts.concurrency))
    this.#syncSlots = new Semaphore(Math.max(1, Math.trunc(opts.maxParallelSyncs ?? 4)))
    this.#allStrategy = opts.syncAllStrategy ?? 'scan'
    this.#scanBufferLimit = Math.max(PAGE, opts.scanBufferLimit ?? 20_000)
    this.#scanLagIds = BigInt(Math.max(0, Math.trunc(opts.scanLagIds ?? 1000)))
    this.#batchMax = Math.max(1, opts.ingestBatchMax ?? 250)
    this.#lanes = Math.max(1, opts.ingestLanes ?? 2)
  }

  /**
   * Syncs the caller's workflows (all, or `workflowIds`). A call while a sync of the same user
   * that covers these workflows runs in this process shares that sync's result; across replicas
   * the advisory lock serialises them (the second one then finds nothing new).
   */
  syncUser (scope: Scope, opts: { workflowIds?: string[] } = {}): Promise<SyncResult> {
    if (scope.kind !== 'user') throw new TypeError('syncUser needs a user scope')
    const ids = opts.workflowIds === undefined ? null : [...new Set(opts.workflowIds)]
    const kind: SyncType = ids === null ? 'user' : 'workflows'
    return this.#coalesce(`user:${scope.userId}`, ids, () =>
      this.#locked(scope, { name: 'sync_user', ownerId: scope.userId }, () => this.#run(kind, scope, ids)))
  }

  /** Every user's workflows, as the service (cron). */
  syncAll (): Promise<SyncResult> {
    return this.#coalesce('all', null, () => this.#locked(serviceScope, { name: 'sync_all' }, () => this.#run('all', serviceScope, null)))
  }

  // ---- orchestration -----------------------------------------------------

  #coalesce (key: string, ids: string[] | null, start: () => Promise<SyncResult>): Promise<SyncResult> {
    const current = this.#inflight.get(key)
    if (current && (current.ids === null || (ids !== null && ids.every((id) => current.ids?.has(id))))) {
      return current.promise
    }
    const before = current?.promise
    const promise = (async () => {
      if (before) await before.catch(() => {})
      return await start()
    })()
    const entry = { ids: ids === null ? null : new Set(ids), promise }
    this.#inflight.set(key, entry)
    promise.finally(() => {
      if (this.#inflight.get(key) === entry) this.#inflight.delete(key)
    }).catch(() => {})
    return promise
  }

  async #locked (scope: Scope, lock: LockSpec, fn: () => Promise<SyncResult>): Promise<SyncResult> {
    return await this.#syncSlots.run(async () => {
      const r = await this.#store.withLock(scope, lock, fn)
      if (!r.acquired) throw new AppError('conflict', 'A sync is already running')
      return r.value
    })
  }

  async #run (kind: SyncType, scope: Scope, ids: string[] | null): Promise<SyncResult> {
    const started = performance.now()
    const syncedAt = this.#now()
    const st: RunState = { scope, syncedAt, batcher: new IngestBatcher(this.#store, scope, syncedAt, this.#batchMax, this.#lanes), errors: [], drift: [], synced: 0, failed: 0, ingested: 0 }
    const skipped: Array<{ workflow_id: string, reason: string }> = []
    let fatal: string | null = null
    let runningList: 'supported' | 'unsupported' | 'not_needed' = 'not_needed'

    const targets = ids !== null && ids.length === 0
      ? []
      : await this.#store.listSyncTargets(scope, { workflowIds: ids === null ? null : ids.filter((id) => UUID_RE.test(id)) })
    if (ids !== null) {
      const found = new Set(targets.map((t) => t.id))
      for (const id of ids) {
        if (!found.has(id)) this.#fail(st, id, new AppError('not_found', 'Workflow not found'))
      }
    }

    const toSync: SyncTarget[] = []
    const toRedeploy: SyncTarget[] = []
    for (const t of targets) {
      if (t.status === 'pending') {
        if (this.#redeploy) toRedeploy.push(t)
        else skipped.push({ workflow_id: t.id, reason: 'pending' })
      } else if (t.status === 'missing_in_n8n') {
        skipped.push({ workflow_id: t.id, reason: 'missing_in_n8n' })
      } else if (t.n8n_workflow_id === null) {
        skipped.push({ workflow_id: t.id, reason: 'not_deployed' })
      } else {
        toSync.push(t)
      }
    }

    const tasks: Array<Promise<void>> = []
    if (toSync.length > 0) {
      const scan = kind === 'all' && this.#allStrategy === 'scan'
      let snap: Snapshot | null = null
      let flags: Promise<Listing | null> | null = null
      try {
        if (scan) {
          // The scan needs the ceiling and the running list; the active flags (drift) are read
          // meanwhile and only awaited at the end.
          const parts = this.#snapshotParts(scope, kind, toSync)
          flags = parts.workflows
          flags.catch(() => {}) // awaited (and reported) later; not an unhandled rejection now
          const { ceiling, running } = await parts.executions
          snap = { ceiling, running, workflows: null }
        } else {
          snap = await this.#snapshot(scope, kind, toSync)
        }
        runningList = snap.running === null ? 'unsupported' : 'supported'
      } catch (err) {
        fatal = isAppError(err) ? err.message : 'n8n could not be read'
        this.#log.warn({ err, sync_type: kind }, 'sync: n8n snapshot failed')
        for (const t of toSync) this.#fail(st, t.id, err)
        snap = null
      }
      if (snap !== null) {
        const s = snap
        if (scan && flags !== null) tasks.push(this.#scanAll(st, toSync, s, flags))
        else for (const t of toSync) tasks.push(this.#work.run(() => this.#syncWorkflow(st, t, s)))
      }
    }
    for (const t of toRedeploy) {
      const redeploy = this.#redeploy
      if (!redeploy) continue
      tasks.push(this.#work.run(async () => {
        try {
          await this.#n8nSlots.run(() => redeploy(scope, t.id))
          st.synced++
        } catch (err) {
          this.#fail(st, t.id, err)
        }
      }))
    }
    await Promise.all(tasks)

    const status: SyncStatus = st.failed === 0 ? 'success' : st.synced === 0 ? 'failed' : 'partial'
    // n8n out of reach is said in so many words: it is the operator's to fix, not the workflows'.
    const down = st.errors.find((e) => e.code === 'n8n_unavailable')
    const unavailable = down === undefined ? null : down.message.startsWith('n8n is unavailable') ? down.message : `n8n is unavailable: ${down.message}`
    const someFailed = `${st.failed} of ${st.failed + st.synced} workflow(s) failed`
    const error = status === 'success'
      ? null
      : status === 'failed'
        ? unavailable ?? fatal ?? `all ${st.failed} workflow(s) failed: ${st.errors[0]?.message ?? ''}`
        : unavailable !== null ? `${someFailed}; ${unavailable}` : fatal ?? someFailed
    const errors = st.errors.slice(0, MAX_ERRORS)
    const details: Record<string, unknown> = {
      drift: st.drift,
      errors,
      running_list: runningList
    }
    if (st.errors.length > errors.length) details.errors_omitted = st.errors.length - errors.length
    if (skipped.length > 0) details.skipped = skipped
    if (ids !== null) details.workflow_ids = ids

    await this.#hooks.beforeLog?.()
    const durationMs = Math.round(performance.now() - started)
    const logId = await this.#store.recordSyncLog(scope, {
      sync_type: kind,
      status,
      duration_ms: durationMs,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      error,
      details
    })
    const result: SyncResult = {
      sync_log_id: logId,
      status,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      duration_ms: durationMs,
      errors,
      error
    }
    this.#log.info({
      sync_log_id: logId,
      sync_type: kind,
      user_id: scope.kind === 'user' ? scope.userId : null,
      status,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      drift: st.drift.length,
      duration_ms: durationMs
    }, 'sync finished')
    return result
  }

  #fail (st: RunState, workflowId: string, err: unknown): void {
    st.failed++
    if (isAppError(err)) {
      st.errors.push({ workflow_id: workflowId, code: err.code, message: err.message })
      return
    }
    const pg = err as { code?: unknown }
    if (pg && pg.code === 'P0002') {
      st.errors.push({ workflow_id: workflowId, code: 'not_found', message: 'Workflow not found (deleted during the sync?)' })
      return
    }
    this.#log.error({ err, workflow_id: workflowId }, 'sync: unexpected error')
    st.errors.push({ workflow_id: workflowId, code: 'internal', message: 'Internal error while syncing this workflow' })
  }

  /**
   * What one sync needs from n8n before any workflow is listed: the ceiling, THEN the running
   * list (the order is what makes the stop point exact), and the active flags for drift.
   */
  async #snapshot (scope: Scope, kind: SyncType, targets: SyncTarget[]): Promise<Snapshot> {
    const parts = this.#snapshotParts(scope, kind, targets)
    const [workflows, { ceiling, running }] = await Promise.all([parts.workflows, parts.executions])
    return { ceiling, running, workflows }
  }

  #snapshotParts (scope: Scope, kind: SyncType, targets: SyncTarget[]): { workflows: Promise<Listing | null>, executions: Promise<Omit<Snapshot, 'workflows'>> } {
    const direct = kind === 'workflows' && targets.length <= DIRECT_LOOKUP_MAX
    const workflows = direct ? Promise.resolve(null) : this.#activeFlags(scope.kind === 'user' ? userTag(scope.userId) : '[USR-')
    const executions = (async () => {
      // One page, not one item: besides C (its newest id) it shows the runs that are not final
      // yet but not hidden either. n8n hides a run only once it is in its in-memory active list,
      // and `status=running` lists stored status `running` only, so a run still `new` (or just
      // `running`) now can be in neither list when R is read and hidden when the workflow is
      // listed: below C, it would be skipped for good. (Seen with a real n8n under a burst of
      // webhook runs: test-e2e/service.test.ts.) They join the running snapshot, so they become
      // open ledger rows, tracked until final.
      const top = await this.#n8n.listExecutions({ limit: PAGE })
      for (const e of top.data) {
        if (!ID_RE.test(e.id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
      }
      const ceiling = top.data[0]?.id ?? '0'
      const running = await this.#runningExecutions()
      if (running !== null) {
        for (const e of top.data) {
          if (FINAL.has(e.status)) continue
          const list = running.get(e.workflowId)
          if (!list) running.set(e.workflowId, [e])
          else if (!list.some((x) => x.id === e.id)) list.push(e)
        }
      }
      return { ceiling, running }
    })()
    return { workflows, executions }
  }

  async #activeFlags (nameFilter: string): Promise<Listing> {
    const flags: Listing = new Map()
    // Only the flag and the marker are kept, not the workflow (nodes can be large).
    for await (const wf of this.#n8n.iterateWorkflows({ name: nameFilter, limit: PAGE })) flags.set(wf.id, { active: wf.active, ...identityOf(wf) })
    return flags
  }

  async #runningExecutions (): Promise<Map<string, N8nExecution[]> | null> {
    if (Date.now() < this.#runningUnsupportedUntil) return null
    const byWorkflow = new Map<string, N8nExecution[]>()
    try {
      for await (const page of this.#n8n.iterateExecutionPages({ status: 'running', limit: PAGE })) {
        for (const e of page.data) {
          if (!ID_RE.test(e.id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
          // A final status here means this n8n ignores the filter: the list is not what we need.
          if (FINAL.has(e.status)) return this.#runningUnsupported('n8n ignored status=running')
          const list = byWorkflow.get(e.workflowId)
          if (list) list.push(e)
          else byWorkflow.set(e.workflowId, [e])
        }
      }
    } catch (err) {
      // n8n < 1.113 validates the filter (error | success | waiting) and answers 400.
      if (isAppError(err) && err.code === 'n8n_rejected') return this.#runningUnsupported(err.message)
      throw err
    }
    return byWorkflow
  }

  #runningUnsupported (why: string): null {
    this.#runningUnsupportedUntil = Date.now() + RUNNING_LIST_RETRY_MS
    this.#log.warn({ reason: why, grace_ms: this.#graceMs }, 'sync: n8n cannot list running executions; using the time-window fallback')
    return null
  }

  async #syncWorkflow (st: RunState, t: SyncTarget, snap: Snapshot): Promise<void> {
    const n8nId = t.n8n_workflow_id
    if (n8nId === null) return
    try {
      const driftError = await this.#reconcile(st, t, n8nId, snap.workflows)
      await this.#ingestWorkflow(st, t, n8nId, snap)
      if (driftError !== null) throw driftError
      st.synced++
    } catch (err) {
      this.#log.warn({ err, workflow_id: t.id, n8n_workflow_id: n8nId }, 'sync: workflow failed')
      this.#fail(st, t.id, err)
    }
  }

  /**
   * Drift: a workflow gone from n8n is marked missing_in_n8n (and this throws); an active flag
   * that differs is set back to the database's value. Answers the repair's error, if any (the
   * workflow's executions are still synced, then it counts as failed).
   */
  async #reconcile (st: RunState, t: SyncTarget, n8nId: string, flags: Listing | null): Promise<unknown> {
    const listed = await this.#verify(st, t, n8nId, flags)
    return await this.#repairActive(st, t, n8nId, listed.active)
  }

  /**
   * The row's n8n workflow as the listing (or one GET) shows it, if it is the row's own: else the
   * row becomes drift (missing_in_n8n, last_error saying why) and this throws, so nothing is done
   * to that workflow and none of its executions are counted.
   */
  async #verify (st: RunState, t: SyncTarget, n8nId: string, flags: Listing | null): Promise<ListedWorkflow> {
    let listed = flags?.get(n8nId)
    if (listed === undefined) {
      // Not in the listing (renamed in n8n?) or not listed at all: ask for it; a 404 is drift.
      try {
        const wf = await this.#n8nSlots.run(() => this.#n8n.getWorkflow(n8nId))
        listed = { active: wf.active, ...identityOf(wf) }
      } catch (err) {
        if (!isN8nNotFound(err)) throw err
        const message = `The workflow is missing in n8n (id ${n8nId}); redeploy it with PATCH or POST /workflows/${t.id}/redeploy`
        await this.#store.markWorkflowMissing(st.scope, t.id, n8nId, message, st.syncedAt)
        st.drift.push({ workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'missing_in_n8n', repaired: false })
        throw new AppError('not_found', message)
      }
    }
    const reason = notOwnedReason(n8nId, t, listed)
    if (reason !== null) {
      const message = `${reason}; its executions were not counted. POST /workflows/${t.id}/redeploy gives this row its own n8n workflow`
      this.#log.warn({ workflow_id: t.id, n8n_workflow_id: n8nId, reason }, 'sync: the n8n workflow is not this row\'s; left untouched')
      await this.#store.markWorkflowMissing(st.scope, t.id, n8nId, message, st.syncedAt)
      st.drift.push({ workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'missing_in_n8n', repaired: false, reason: message })
      throw new AppError('conflict', message)
    }
    return listed
  }

  /** Supabase is the source of truth: an active flag that differs is set back. Answers the repair's error. */
  async #repairActive (st: RunState, t: SyncTarget, n8nId: string, active: boolean): Promise<unknown> {
    let driftError: unknown = null
    if (active !== t.active) {
      // Supabase is the source of truth: put n8n back to the database's value.
      const entry: DriftEntry = { workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'active', database_active: t.active, n8n_active: active, repaired: false }
      try {
        await this.#n8nSlots.run(() => t.active ? this.#n8n.activateWorkflow(n8nId) : this.#n8n.deactivateWorkflow(n8nId))
        entry.repaired = true
      } catch (err) {
        entry.error = isAppError(err) ? err.code : 'internal'
        driftError = err
      }
      st.drift.push(entry)
    }
    return driftError
  }

  async #ingestWorkflow (st: RunState, t: SyncTarget, n8nId: string, snap: Snapshot): Promise<void> {
    const floor = t.execution_floor_id === null ? null : BigInt(t.execution_floor_id)
    const running = (snap.running?.get(n8nId) ?? []).map(toInput)
    let pageIndex = 0
    let changed = false
    let lastId: string | null = null
    let recheck: string[] = []
    let finalFloor: string | null = t.execution_floor_id

    const pages = this.#n8n.iterateExecutionPages({ workflowId: n8nId, limit: PAGE })
    for (;;) {
      const next = await this.#n8nSlots.run(() => pages.next())
      if (next.done === true) break
      const page = next.value
      const above: ExecutionInput[] = []
      let reachedFloor = false
      for (const e of page.data) {
        if (!ID_RE.test(e.id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
        // The stop rule relies on newest-first order; refuse anything else rather than miss runs.
        if (lastId !== null && compareIds(e.id, lastId) >= 0) throw n8nShapeError('n8n returned executions out of order')
        lastId = e.id
        if (floor !== null && BigInt(e.id) <= floor) {
          reachedFloor = true
          break
        }
        above.push(toInput(e))
      }
      const complete = reachedFloor || page.nextCursor === null
      // The running snapshot is older than this page: it goes first so the page's answer wins.
      const batch = pageIndex === 0 && running.length > 0 ? [...running, ...above] : above
      const options: IngestOptions = {}
      if (complete) {
        options.complete = true
        options.ceiling = snap.ceiling
        // Nothing new in one page: keep the stored floor and write nothing.
        options.advance = changed || pageIndex > 0
        if (snap.running === null) options.started_before = new Date(st.syncedAt.getTime() - this.#graceMs).toISOString()
      }
      if (batch.length > 0 || complete) {
        const r = await st.batcher.ingest({ workflowId: t.id, executions: batch, options })
        st.ingested += r.inserted + r.updated
        changed ||= r.workflow_written
        if (complete) {
          recheck = r.recheck
          finalFloor = r.floor
        }
      }
      await this.#hooks.afterPage?.(t.id, pageIndex)
      if (complete) {
        await pages.return(undefined)
        break
      }
      pageIndex++
    }

    if (recheck.length > 0 && finalFloor !== null) await this.#recheckOpen(st, t, recheck)
  }

  /**
   * /sync/all as ONE newest-first pass over the instance's execution list (no workflowId), down to
   * the lowest stop point of the workflows in it, instead of one list per workflow. Same guarantees
   * as the per-workflow pass (see the header, "INSTANCE SCAN").
   */
  async #scanAll (st: RunState, targets: SyncTarget[], snap: Snapshot, flagsP: Promise<Listing | null>): Promise<void> {
    const ceiling = snap.ceiling
    const C = BigInt(ceiling)
    const scanSet: SyncTarget[] = []
    const fresh: SyncTarget[] = []
    for (const t of targets) (t.execution_floor_id === null ? fresh : scanSet).push(t)
    let stop: bigint | null = null
    for (const t of scanSet) {
      const f = BigInt(t.execution_floor_id ?? '0')
      if (stop === null || f < stop) stop = f
    }
    // A workflow that never completed a pass needs its whole history. In the scan that is the
    // instance's list down to its oldest execution: ids are never reused, so at most
    // stop/250 more pages (ceiling/250 without other workflows), against n list calls on their
    // own, in ⌈n/concurrency⌉ waves. The scan is taken when it costs no more n8n calls and at
    // most SCAN_WAVES_FACTOR times the waves' latency: per-workflow lists are bound by the cost
    // of each call (HTTP, parsing, one ledger write each), not by their waves (the first full
    // sync, bench:backfill: 10,000 lists took 22-50 s against a 3.2 s latency floor; the scan of
    // the same 100,000 executions reads 401 pages).
    let direct: SyncTarget[] = []
    if (fresh.length > 0) {
      const extraPages = (stop ?? C) / BigInt(PAGE) + 1n
      const waves = BigInt(Math.ceil(fresh.length / this.#concurrency))
      if (extraPages <= waves || (extraPages <= BigInt(fresh.length) && extraPages <= SCAN_WAVES_FACTOR * waves)) {
        scanSet.push(...fresh)
        stop = -1n
      } else {
        direct = fresh
      }
    }
    const directTasks = direct.map((t) => this.#work.run(async () => {
      let workflows: Listing | null
      try {
        workflows = await flagsP
      } catch (err) {
        this.#fail(st, t.id, err)
        return
      }
      await this.#syncWorkflow(st, t, { ...snap, workflows })
    }))

    const states = new Map<string, ScanWf>()
    let open: Set<string>
    try {
      open = new Set(scanSet.length === 0 ? [] : await this.#store.workflowsWithOpenRows(st.scope, scanSet.map((t) => t.id)))
    } catch (err) {
      for (const t of scanSet) this.#fail(st, t.id, err)
      await Promise.all(directTasks)
      return
    }
    for (const t of scanSet) {
      const n8nId = t.n8n_workflow_id
      if (n8nId === null) continue
      const running = snap.running?.get(n8nId) ?? []
      states.set(n8nId, {
        t,
        n8nId,
        floor: t.execution_floor_id === null ? -1n : BigInt(t.execution_floor_id),
        running: running.map((e) => store.executionJson(toInput(e))),
        runningPending: running.length > 0,
        buf: [],
        openSeen: running.length > 0 ? new Set(running.map((e) => e.id)) : null,
        touched: running.length > 0,
        hasOpen: open.has(t.id),
        passed: false,
        n8nActive: null,
        error: null
      })
    }
    // Highest stop point first: as the scan goes down, a prefix of this list is complete.
    const order = [...states.values()].sort((a, b) => (a.floor > b.floor ? -1 : a.floor < b.floor ? 1 : 0))

    // Ownership, meanwhile (the listing arrives while the scan reads): each workflow's n8n copy
    // must be the row's own before anything of it is written; flush() waits for this.
    const verified = (async (): Promise<void> => {
      let flags: Listing | null
      try {
        flags = await flagsP
      } catch (err) {
        for (const w of states.values()) w.error ??= err
        return
      }
      await Promise.all([...states.values()].map(async (w) => {
        const listed = flags?.get(w.n8nId)
        if (listed !== undefined && notOwnedReason(w.n8nId, w.t, listed) === null) {
          w.n8nActive = listed.active
          return
        }
        await this.#work.run(async () => {
          try {
            w.n8nActive = (await this.#verify(st, w.t, w.n8nId, flags)).active
          } catch (err) {
            w.error ??= err
          }
        })
      }))
    })()
    // Then drift of the active flag.
    const drift = (async () => {
      await verified
      await Promise.all([...states.values()].map(async (w) => {
        const active = w.n8nActive
        if (w.error !== null || active === null || active === w.t.active) return
        await this.#work.run(async () => {
          try {
            const err = await this.#repairActive(st, w.t, w.n8nId, active)
            if (err !== null) w.error ??= err
          } catch (err) {
            w.error ??= err
          }
        })
      }))
    })()

    const fallback = snap.running === null
    const cutoff = fallback ? st.syncedAt.getTime() - this.#graceMs : 0
    let cutoffId: bigint | null = null // fallback: newest id seen that started before the cutoff
    const scanOptions: { ceiling: string, started_before?: string } = { ceiling }
    if (fallback) scanOptions.started_before = new Date(cutoff).toISOString()
    const rechecks: Array<Promise<void>> = []
    const idle: ScanWf[] = []
    let buffered = 0
    let round: Promise<void> = Promise.resolve()

    /** Writes these workflows' buffers (final: and ends their pass); one round at a time. */
    const flush = async (items: Array<[ScanWf, boolean]>): Promise<void> => {
      if (items.length === 0) return
      // Nothing is written for a workflow before its n8n copy is known to be the row's own.
      await verified
      // Rounds are sequential, so a workflow's chunks commit in order and its final one (which
      // moves its stop point) last; the next page is read while a round is written. The jobs are
      // built once the previous round is done: a workflow whose chunk failed there gets no final
      // job (its stop point must not pass executions that were not written).
      await round
      const jobs: Array<{ w: ScanWf, job: ScanJob }> = []
      for (const [w, final] of items) {
        if (w.error !== null) {
          buffered -= w.buf.length
          w.buf = []
          continue
        }
        const pending = w.runningPending ? [...w.running, ...w.buf] : w.buf
        w.runningPending = false
        buffered -= w.buf.length
        w.buf = []
        jobs.push({ w, job: { workflowId: w.t.id, items: pending, final } })
      }
      if (jobs.length > 0) round = this.#scanRound(st, jobs, scanOptions, rechecks)
    }

    let lastId: bigint | null = null
    let pageIndex = 0
    let scanError: unknown = null
    let ptr = 0
    try {
      if (order.length > 0) {
        // The next page is requested while this one is processed and written, when this one
        // shows the scan goes on (its oldest item is above the stop point and more follow).
        const goesOn = (p: N8nExecutionPage): boolean => {
          const tail = p.data.at(-1)
          return p.nextCursor !== null && tail !== undefined && ID_RE.test(tail.id) && (stop === null || BigInt(tail.id) > stop)
        }
        for await (const page of readAhead(this.#n8n.iterateExecutionPages({ limit: PAGE }), goesOn)) {
          let reachedStop = false
          const full: ScanWf[] = []
          for (const e of page.data) {
            if (!ID_RE.test(e.id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
            const id = BigInt(e.id)
            // The stop rule relies on newest-first order; refuse anything else rather than miss runs.
            if (lastId !== null && id >= lastId) throw n8nShapeError('n8n returned executions out of order')
            lastId = id
            if (stop !== null && id <= stop) {
              reachedStop = true
              break
            }
            if (fallback && (cutoffId === null || id > cutoffId) && e.startedAt !== null && Date.parse(e.startedAt) < cutoff) cutoffId = id
            const w = states.get(e.workflowId)
            // Not ours (or not in this sync), already below its own stop point, or failed.
            if (w === undefined || id <= w.floor || w.error !== null) continue
            w.buf.push(store.executionJson(toInput(e)))
            w.touched = true
            buffered++
            if (!FINAL.has(e.status)) (w.openSeen ??= new Set()).add(e.id)
            if (w.buf.length === PAGE) full.push(w)
          }
          const complete = reachedStop || page.nextCursor === null
          const items: Array<[ScanWf, boolean]> = []
          // Complete: every execution above its stop point has been read.
          while (ptr < order.length) {
            const w = order[ptr] as ScanWf
            if (!complete && (lastId === null || w.floor < lastId)) break
            ptr++
            w.passed = true
            if (w.error !== null) continue
            if (w.touched || w.hasOpen) items.push([w, true])
            else idle.push(w)
          }
          const finals = new Set(items.map(([w]) => w))
          if (buffered - items.reduce((n, [w]) => n + w.buf.length, 0) >= this.#scanBufferLimit) {
            // Memory bound: every buffer goes out as a partial chunk (the stop points stay).
            for (const w of order.slice(ptr)) if (w.buf.length > 0 && !finals.has(w)) items.push([w, false])
          } else {
            for (const w of full) if (!finals.has(w) && w.buf.length >= PAGE) items.push([w, false])
          }
          await flush(items)
          if (this.#hooks.afterScanPage) {
            await round
            await this.#hooks.afterScanPage(pageIndex)
          }
          pageIndex++
          if (complete) break
        }
      }
    } catch (err) {
      scanError = err
      this.#log.warn({ err, pages: pageIndex }, 'sync: instance scan failed')
    }
    await round
    await drift
    await Promise.all([...rechecks, ...directTasks])

    // Idle workflows (nothing new, no active run, no open row): their pass is complete too. Their
    // stop point is raised (in workflow_scan_floors) once it lags enough to cost the next scan pages.
    if (scanError === null) {
      const raiseTo = fallback ? (cutoffId === null ? null : (cutoffId < C ? cutoffId : C)) : C
      if (raiseTo !== null) {
        const lagging = idle.filter((w) => w.error === null && w.floor >= 0n && raiseTo - w.floor > this.#scanLagIds).map((w) => w.t.id)
        try {
          for (let i = 0; i < lagging.length; i += 5000) {
            await this.#store.raiseScanFloors(st.scope, lagging.slice(i, i + 5000), raiseTo.toString())
          }
        } catch (err) {
          // Only an optimisation: the next scan reads deeper, nothing is lost.
          this.#log.warn({ err }, 'sync: raising idle stop points failed')
        }
      }
    }
    for (const w of states.values()) {
      // A workflow whose pass did not complete before the scan failed shares the scan's error.
      const err = w.error ?? (scanError !== null && !w.passed ? scanError : null)
      if (err !== null) {
        this.#log.warn({ err, workflow_id: w.t.id, n8n_workflow_id: w.n8nId }, 'sync: workflow failed')
        this.#fail(st, w.t.id, err)
      } else {
        st.synced++
      }
    }
  }

  /** One round of scan jobs: batched transactions; results, failures and re-checks per workflow. */
  async #scanRound (st: RunState, jobs: Array<{ w: ScanWf, job: ScanJob }>, options: { ceiling: string, started_before?: string }, rechecks: Array<Promise<void>>): Promise<void> {
    const groups: Array<typeof jobs> = []
    let size = 0
    for (const j of jobs) {
      const last = groups.at(-1)
      // Bounded transactions: at most ingestBatchMax workflows and ~20 pages of executions each.
      if (last === undefined || last.length >= this.#batchMax || size + j.job.items.length > 20 * PAGE) {
        groups.push([j])
        size = j.job.items.length
      } else {
        last.push(j)
        size += j.job.items.length
      }
    }
    const write = (g: typeof jobs): Promise<IngestResult[]> =>
      this.#store.ingestScanBatch(st.scope, g.map((j) => j.job), st.syncedAt, options)
    // Two at a time: a round has each workflow at most once, so its groups are independent.
    let next = 0
    const lane = async (): Promise<void> => {
      for (let g = groups[next++]; g !== undefined; g = groups[next++]) {
        let rs: Array<{ ok: true, result: IngestResult } | { ok: false, error: unknown }>
        try {
          rs = (await write(g)).map((result) => ({ ok: true as const, result }))
        } catch {
          // One by one: the error belongs to one workflow (or to all, if the database is down).
          rs = []
          for (const j of g) {
            try {
              const [result] = await write([j])
              rs.push(result === undefined ? { ok: false, error: new Error('no result') } : { ok: true, result })
            } catch (error) {
              rs.push({ ok: false, error })
            }
          }
        }
        rs.forEach((r, i) => {
          const j = g[i]
          if (!j) return
          if (!r.ok) {
            j.w.error ??= r.error
            return
          }
          st.ingested += r.result.inserted + r.result.updated
          if (j.job.final && r.result.recheck.length > 0) {
            const seen = j.w.openSeen
            const ids = seen === null ? r.result.recheck : r.result.recheck.filter((id) => !seen.has(id))
            if (ids.length > 0) {
              const w = j.w
              rechecks.push(this.#work.run(async () => {
                try {
                  await this.#recheckOpen(st, w.t, ids)
                } catch (err) {
                  w.error ??= err
                }
              }))
            }
          }
        })
      }
    }
    await Promise.all([lane(), lane()])
  }

  /** Open rows below the stop point (e.g. a run waiting for days): asked for one by one. */
  async #recheckOpen (st: RunState, t: SyncTarget, ids: string[]): Promise<void> {
    const found: ExecutionInput[] = []
    const vanished: string[] = []
    for (const id of ids) {
      try {
        found.push(toInput(await this.#n8nSlots.run(() => this.#n8n.getExecution(id))))
      } catch (err) {
        if (!isN8nNotFound(err)) throw err
        vanished.push(id)
      }
    }
    const r = await this.#store.ingestExecutions(st.scope, t.id, found, st.syncedAt, { vanished })
    st.ingested += r.inserted + r.updated
  }
}
