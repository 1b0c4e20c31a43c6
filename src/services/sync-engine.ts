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
// per sync, ONE call `GET /executions?limit=1` gives C (the newest listed id), THEN the running
// list `GET /executions?status=running` (all pages) gives every run active at that moment R, THEN
// each workflow is listed (time L > R). A run hidden at L was active at L. If it started before R
// it was active at R, so it is in the running list: it is written to the ledger as an open
// `running` row (open rows are tracked, see below). If it started after R its id is greater than
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
// CRASH SAFETY: each n8n page is one transaction (`ingest_executions`: ledger upsert + counts +
// last_execution_*), and the floor moves only in the transaction of the page that completes the
// pass, after every older page committed. A crash anywhere leaves counts equal to the ledger and
// the floor where a full re-read down to it catches everything; the next sync does exactly that.
//
// COST of a re-sync with nothing new: one list call per workflow (the first page already reaches
// the floor), plus per sync one ceiling call, the running list (usually one page) and one
// `GET /workflows?name=[USR-xxxxxxxx]` page per 250 workflows for drift; nothing is written but the
// sync_logs row. mvp_workflows (counts, last_execution_*, floor, last_sync_at) is written only
// when something changed: last_sync_at is the last sync that found something new for the
// workflow (every sync is in sync_logs).

import type { Database } from '../db/database.ts'
import { inScope, serviceScope } from '../store/scope.ts'
import type { Scope } from '../store/scope.ts'
import * as store from '../store/sync-store.ts'
import type { ExecutionInput, IngestOptions, SyncTarget } from '../store/sync-store.ts'
import { AppError, isAppError } from './errors.ts'
import { isN8nNotFound } from './n8n-client.ts'
import type { N8nClient, N8nExecution } from './n8n-client.ts'

export type SyncN8n = Pick<N8nClient,
  'listExecutions' | 'iterateExecutionPages' | 'getExecution' | 'getWorkflow' | 'iterateWorkflows' |
  'activateWorkflow' | 'deactivateWorkflow'>

type LogFn = (obj: object, msg?: string) => void
export interface SyncLogger { info: LogFn, warn: LogFn, error: LogFn }

export interface SyncHooks {
  /** After page `pageIndex` of a workflow's pass was committed (tests throw here). */
  afterPage?(workflowId: string, pageIndex: number): Promise<void> | void
  /** After all work, before the sync_logs row is written. */
  beforeLog?(): Promise<void> | void
}

export interface SyncEngineOptions {
  db: Database
  n8n: SyncN8n
  logger: SyncLogger
  /** Parallel workflows (n8n calls + their transactions) across every sync of this engine. */
  concurrency: number
  /** Retries a `pending` deploy (the workflow service provides it). */
  redeploy?: (scope: Scope, workflowId: string) => Promise<void>
  now?: () => Date
  hooks?: SyncHooks
  /** Fallback for n8n without a running list: the longest a run may stay hidden. Default 24 h. */
  runningGraceMs?: number
  /** Syncs running at once in this process; each holds one pooled connection for its lock. Default 4. */
  maxParallelSyncs?: number
}

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
}

export interface ExecutionPage {
  data: Array<Omit<store.ExecutionRow, 'seq'>>
  next_cursor: string | null
}

export interface SyncLogPage {
  data: Array<Omit<store.SyncLogRow, 'created_key'>>
  next_cursor: string | null
}

export interface SyncStats {
  hours: number
  since: string
  total: number
  /** successful syncs / all syncs in the window; null without syncs. */
  success_rate: number | null
  by_type: Array<{ sync_type: string, count: number, success_rate: number, avg_duration_ms: number }>
  groups: store.SyncStatsRow[]
}

const LOCK_USER = 741_853
const LOCK_ALL = 741_854
const PAGE = 250
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
  /** n8n workflow id → active flag; null: look each workflow up. */
  workflows: Map<string, boolean> | null
}

interface RunState {
  scope: Scope
  syncedAt: Date
  errors: SyncError[]
  drift: DriftEntry[]
  synced: number
  failed: number
  ingested: number
}

class Semaphore {
  #free: number
  readonly #queue: Array<() => void> = []

  constructor (n: number) {
    this.#free = Math.max(1, Math.trunc(n))
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) {
      this.#free--
    } else {
      await new Promise<void>((resolve) => this.#queue.push(resolve))
    }
    try {
      return await fn()
    } finally {
      const next = this.#queue.shift()
      if (next) next()
      else this.#free++
    }
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

function encodeCursor (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function decodeCursor (cursor: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
  } catch {}
  throw invalidCursor()
}

function invalidCursor (): AppError {
  return new AppError('validation_failed', 'Invalid cursor', { errors: [{ path: 'cursor', message: 'is not a cursor this endpoint returned' }] })
}

function userTag (userId: string): string {
  return `[USR-${userId.replace(/-/g, '').slice(0, 8).toLowerCase()}]`
}

export class SyncEngine {
  readonly #db: Database
  readonly #n8n: SyncN8n
  readonly #log: SyncLogger
  readonly #redeploy: SyncEngineOptions['redeploy']
  readonly #now: () => Date
  readonly #hooks: SyncHooks
  readonly #graceMs: number
  readonly #work: Semaphore
  readonly #syncSlots: Semaphore
  readonly #inflight = new Map<string, { ids: Set<string> | null, promise: Promise<SyncResult> }>()
  #runningUnsupportedUntil = 0

  constructor (opts: SyncEngineOptions) {
    this.#db = opts.db
    this.#n8n = opts.n8n
    this.#log = opts.logger
    this.#redeploy = opts.redeploy
    this.#now = opts.now ?? (() => new Date())
    this.#hooks = opts.hooks ?? {}
    this.#graceMs = opts.runningGraceMs ?? 24 * 3600_000
    this.#work = new Semaphore(opts.concurrency)
    this.#syncSlots = new Semaphore(opts.maxParallelSyncs ?? 4)
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
      this.#locked(LOCK_USER, scope.userId, () => this.#run(kind, scope, ids)))
  }

  /** Every user's workflows, as the service (cron). */
  syncAll (): Promise<SyncResult> {
    return this.#coalesce('all', null, () => this.#locked(LOCK_ALL, 'all', () => this.#run('all', serviceScope, null)))
  }

  /** Execution history of one workflow from the ledger, newest first (keyset pagination). */
  async listExecutions (scope: Scope, workflowId: string, q: { limit?: number, cursor?: string | null, status?: string | null } = {}): Promise<ExecutionPage> {
    const limit = Math.min(250, Math.max(1, Math.trunc(q.limit ?? 50)))
    let beforeSeq: string | null = null
    if (q.cursor) {
      const c = decodeCursor(q.cursor)
      if (typeof c.s !== 'string' || !ID_RE.test(c.s)) throw invalidCursor()
      beforeSeq = c.s
    }
    if (!UUID_RE.test(workflowId)) throw new AppError('not_found', 'Workflow not found')
    return await inScope(this.#db, scope, async (tx) => {
      if (!await store.workflowVisible(tx, workflowId)) throw new AppError('not_found', 'Workflow not found')
      const rows = await store.listExecutionRows(tx, workflowId, { limit: limit + 1, beforeSeq, status: q.status ?? null })
      const more = rows.length > limit
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return {
        data: page.map(({ seq: _seq, ...row }) => row),
        next_cursor: more && last ? encodeCursor({ s: last.seq }) : null
      }
    })
  }

  /** Sync history: a user sees their own rows (RLS), the service every row. */
  async listLogs (scope: Scope, q: { limit?: number, cursor?: string | null } = {}): Promise<SyncLogPage> {
    const limit = Math.min(100, Math.max(1, Math.trunc(q.limit ?? 20)))
    let before: { created: string, id: string } | null = null
    if (q.cursor) {
      const c = decodeCursor(q.cursor)
      if (typeof c.c !== 'string' || typeof c.i !== 'string' || !UUID_RE.test(c.i) || Number.isNaN(Date.parse(c.c))) throw invalidCursor()
      before = { created: c.c, id: c.i }
    }
    const rows = await inScope(this.#db, scope, (tx) => store.listSyncLogs(tx, { limit: limit + 1, before }))
    const more = rows.length > limit
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      data: page.map(({ created_key: _k, ...row }) => row),
      next_cursor: more && last ? encodeCursor({ c: last.created_key, i: last.id }) : null
    }
  }

  /** Per sync_type and status over the last `hours`: count and average duration; success rates. */
  async stats (scope: Scope, hours: number): Promise<SyncStats> {
    if (!Number.isFinite(hours) || hours <= 0 || hours > 24 * 366) {
      throw new AppError('validation_failed', 'hours must be between 0 and 8784', { errors: [{ path: 'hours', message: 'out of range' }] })
    }
    const since = new Date(this.#now().getTime() - hours * 3600_000)
    const groups = await inScope(this.#db, scope, (tx) => store.syncStatsSince(tx, since))
    const byType = new Map<string, { count: number, success: number, weighted: number }>()
    let total = 0
    let success = 0
    for (const g of groups) {
      total += g.count
      if (g.status === 'success') success += g.count
      const t = byType.get(g.sync_type) ?? { count: 0, success: 0, weighted: 0 }
      t.count += g.count
      if (g.status === 'success') t.success += g.count
      t.weighted += g.avg_duration_ms * g.count
      byType.set(g.sync_type, t)
    }
    return {
      hours,
      since: since.toISOString(),
      total,
      success_rate: total === 0 ? null : success / total,
      by_type: [...byType].map(([syncType, t]) => ({
        sync_type: syncType,
        count: t.count,
        success_rate: t.success / t.count,
        avg_duration_ms: Math.round(t.weighted / t.count)
      })),
      groups
    }
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

  async #locked (namespace: number, key: string, fn: () => Promise<SyncResult>): Promise<SyncResult> {
    return await this.#syncSlots.run(async () => {
      const r = await this.#db.withAdvisoryLock(namespace, key, fn)
      if (!r.acquired) throw new AppError('conflict', 'A sync is already running')
      return r.value
    })
  }

  async #run (kind: SyncType, scope: Scope, ids: string[] | null): Promise<SyncResult> {
    const started = performance.now()
    const st: RunState = { scope, syncedAt: this.#now(), errors: [], drift: [], synced: 0, failed: 0, ingested: 0 }
    const skipped: Array<{ workflow_id: string, reason: string }> = []
    let fatal: string | null = null
    let runningList: 'supported' | 'unsupported' | 'not_needed' = 'not_needed'

    const targets = ids !== null && ids.length === 0
      ? []
      : await inScope(this.#db, scope, (tx) => store.listSyncTargets(tx, { workflowIds: ids === null ? null : ids.filter((id) => UUID_RE.test(id)) }))
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
      let snap: Snapshot | null = null
      try {
        snap = await this.#snapshot(scope, kind, toSync)
        runningList = snap.running === null ? 'unsupported' : 'supported'
      } catch (err) {
        fatal = isAppError(err) ? err.message : 'n8n could not be read'
        this.#log.warn({ err, sync_type: kind }, 'sync: n8n snapshot failed')
        for (const t of toSync) this.#fail(st, t.id, err)
      }
      if (snap !== null) {
        const s = snap
        for (const t of toSync) tasks.push(this.#work.run(() => this.#syncWorkflow(st, t, s)))
      }
    }
    for (const t of toRedeploy) {
      const redeploy = this.#redeploy
      if (!redeploy) continue
      tasks.push(this.#work.run(async () => {
        try {
          await redeploy(scope, t.id)
          st.synced++
        } catch (err) {
          this.#fail(st, t.id, err)
        }
      }))
    }
    await Promise.all(tasks)

    const status: SyncStatus = st.failed === 0 ? 'success' : st.synced === 0 ? 'failed' : 'partial'
    const error = status === 'success'
      ? null
      : fatal ?? (status === 'failed'
        ? `all ${st.failed} workflow(s) failed: ${st.errors[0]?.message ?? ''}`
        : `${st.failed} of ${st.failed + st.synced} workflow(s) failed`)
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
    const logId = await inScope(this.#db, scope, (tx) => store.recordSyncLog(tx, {
      sync_type: kind,
      status,
      duration_ms: durationMs,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      error,
      details
    }))
    const result: SyncResult = {
      sync_log_id: logId,
      status,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      duration_ms: durationMs,
      errors
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
    const direct = kind === 'workflows' && targets.length <= DIRECT_LOOKUP_MAX
    const workflowsP = direct ? Promise.resolve(null) : this.#activeFlags(scope.kind === 'user' ? userTag(scope.userId) : '[USR-')
    const executionsP = (async () => {
      const top = await this.#n8n.listExecutions({ limit: 1 })
      const newest = top.data[0]
      if (newest !== undefined && !ID_RE.test(newest.id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
      const ceiling = newest?.id ?? '0'
      const running = await this.#runningExecutions()
      return { ceiling, running }
    })()
    const [workflows, { ceiling, running }] = await Promise.all([workflowsP, executionsP])
    return { ceiling, running, workflows }
  }

  async #activeFlags (nameFilter: string): Promise<Map<string, boolean>> {
    const flags = new Map<string, boolean>()
    for await (const wf of this.#n8n.iterateWorkflows({ name: nameFilter, limit: PAGE })) flags.set(wf.id, wf.active)
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
      let active = snap.workflows?.get(n8nId)
      if (active === undefined) {
        // Not in the listing (renamed in n8n?) or not listed at all: ask for it; a 404 is drift.
        try {
          active = (await this.#n8n.getWorkflow(n8nId)).active
        } catch (err) {
          if (!isN8nNotFound(err)) throw err
          const message = `The workflow is missing in n8n (id ${n8nId}); redeploy it with PATCH or POST /workflows/${t.id}/redeploy`
          await inScope(this.#db, st.scope, (tx) => store.markWorkflowMissing(tx, t.id, n8nId, message, st.syncedAt))
          st.drift.push({ workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'missing_in_n8n', repaired: false })
          throw new AppError('not_found', message)
        }
      }

      let driftError: unknown = null
      if (active !== t.active) {
        // Supabase is the source of truth: put n8n back to the database's value.
        const entry: DriftEntry = { workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'active', database_active: t.active, n8n_active: active, repaired: false }
        try {
          if (t.active) await this.#n8n.activateWorkflow(n8nId)
          else await this.#n8n.deactivateWorkflow(n8nId)
          entry.repaired = true
        } catch (err) {
          entry.error = isAppError(err) ? err.code : 'internal'
          driftError = err
        }
        st.drift.push(entry)
      }

      await this.#ingestWorkflow(st, t, n8nId, snap)
      if (driftError !== null) throw driftError
      st.synced++
    } catch (err) {
      this.#log.warn({ err, workflow_id: t.id, n8n_workflow_id: n8nId }, 'sync: workflow failed')
      this.#fail(st, t.id, err)
    }
  }

  async #ingestWorkflow (st: RunState, t: SyncTarget, n8nId: string, snap: Snapshot): Promise<void> {
    const floor = t.execution_floor_id === null ? null : BigInt(t.execution_floor_id)
    const running = (snap.running?.get(n8nId) ?? []).map(toInput)
    let pageIndex = 0
    let changed = false
    let lastId: string | null = null
    let recheck: string[] = []
    let finalFloor: string | null = t.execution_floor_id

    for await (const page of this.#n8n.iterateExecutionPages({ workflowId: n8nId, limit: PAGE })) {
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
        const r = await inScope(this.#db, st.scope, (tx) => store.ingestExecutions(tx, t.id, batch, st.syncedAt, options))
        st.ingested += r.inserted + r.updated
        changed ||= r.workflow_written
        if (complete) {
          recheck = r.recheck
          finalFloor = r.floor
        }
      }
      await this.#hooks.afterPage?.(t.id, pageIndex)
      if (complete) break
      pageIndex++
    }

    if (recheck.length > 0 && finalFloor !== null) await this.#recheckOpen(st, t, recheck)
  }

  /** Open rows below the stop point (e.g. a run waiting for days): asked for one by one. */
  async #recheckOpen (st: RunState, t: SyncTarget, ids: string[]): Promise<void> {
    const found: ExecutionInput[] = []
    const vanished: string[] = []
    for (const id of ids) {
      try {
        found.push(toInput(await this.#n8n.getExecution(id)))
      } catch (err) {
        if (!isN8nNotFound(err)) throw err
        vanished.push(id)
      }
    }
    const r = await inScope(this.#db, st.scope, (tx) => store.ingestExecutions(tx, t.id, found, st.syncedAt, { vanished }))
    st.ingested += r.inserted + r.updated
  }
}
