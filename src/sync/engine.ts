// The sync engine: n8n execution results into the Postgres ledger, exact, incremental and safe
// under failure. Why it is exact, crash-safe and cheap: README.md beside this file. No Fastify
// here: routes, cron, benchmarks and tests drive it directly.
//
// This file is the orchestrator (coalesce, lock, run, result and log); the work is in the
// modules: snapshot.ts (what n8n says at sync start), drift.ts, workflow-pass.ts (one
// workflow's list), instance-scan.ts (/sync/all as one pass over the instance), ingest-batcher.ts.
import { AppError, isAppError } from '../errors.ts'
import { isUuid } from '../lib/ids.ts'
import { Semaphore } from '../lib/semaphore.ts'
import { serviceScope } from '../store/scope.ts'
import type { Scope } from '../store/scope.ts'
import type { LockSpec, SyncTarget } from '../store/store.ts'
import { PAGE } from './execution-ids.ts'
import { IngestBatcher } from './ingest-batcher.ts'
import { InstanceScan } from './instance-scan.ts'
import { failWorkflow } from './run-state.ts'
import type { RunState } from './run-state.ts'
import { SnapshotReader } from './snapshot.ts'
import type { Listing, Snapshot, SyncAllStrategy, SyncContext, SyncEngineOptions, SyncMetrics, SyncResult, SyncStatus, SyncType } from './types.ts'
import { syncWorkflow } from './workflow-pass.ts'

const MAX_ERRORS = 200

type Skipped = Array<{ workflow_id: string, reason: string }>
type RunningList = 'supported' | 'unsupported' | 'not_needed'

export class SyncEngine {
  readonly #ctx: SyncContext
  readonly #redeploy: SyncEngineOptions['redeploy']
  readonly #snapshots: SnapshotReader
  readonly #syncSlots: Semaphore
  readonly #allStrategy: SyncAllStrategy
  readonly #lanes: number
  readonly #metrics: SyncMetrics | undefined
  readonly #inflight = new Map<string, { ids: Set<string> | null, promise: Promise<SyncResult> }>()

  constructor (opts: SyncEngineOptions) {
    const concurrency = Math.max(1, Math.trunc(opts.concurrency))
    const now = opts.now ?? (() => new Date())
    const graceMs = opts.runningGraceMs ?? 24 * 3600_000
    this.#ctx = {
      store: opts.store,
      n8n: opts.n8n,
      log: opts.logger,
      hooks: opts.hooks ?? {},
      now,
      graceMs,
      // A workflow gives its n8n slot back while its page is written, so the next workflow's call
      // starts meanwhile; at most twice as many workflows are in progress (memory bound).
      work: new Semaphore(Math.max(1, 2 * Math.trunc(opts.concurrency))),
      n8nSlots: new Semaphore(concurrency),
      concurrency,
      scanBufferLimit: Math.max(PAGE, opts.scanBufferLimit ?? 20_000),
      scanLagIds: BigInt(Math.max(0, Math.trunc(opts.scanLagIds ?? 1000))),
      batchMax: Math.max(1, opts.ingestBatchMax ?? 250)
    }
    this.#redeploy = opts.redeploy
    this.#snapshots = new SnapshotReader(opts.n8n, opts.logger, now, graceMs)
    this.#syncSlots = new Semaphore(Math.max(1, Math.trunc(opts.maxParallelSyncs ?? 4)))
    this.#allStrategy = opts.syncAllStrategy ?? 'scan'
    this.#lanes = Math.max(1, opts.ingestLanes ?? 2)
    this.#metrics = opts.metrics
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
      const r = await this.#ctx.store.withLock(scope, lock, fn)
      if (!r.acquired) throw new AppError('conflict', 'A sync is already running')
      return r.value
    })
  }

  async #run (kind: SyncType, scope: Scope, ids: string[] | null): Promise<SyncResult> {
    const started = performance.now()
    const syncedAt = this.#ctx.now()
    const st: RunState = { scope, syncedAt, batcher: new IngestBatcher(this.#ctx.store, scope, syncedAt, this.#ctx.batchMax, this.#lanes), errors: [], drift: [], synced: 0, failed: 0, ingested: 0 }
    const { toSync, toRedeploy, skipped } = await this.#targets(st, ids)
    const tasks: Array<Promise<void>> = []
    let fatal: string | null = null
    let runningList: RunningList = 'not_needed'
    if (toSync.length > 0) {
      const s = await this.#startSync(st, kind, toSync, tasks)
      fatal = s.fatal
      runningList = s.runningList
    }
    for (const t of toRedeploy) tasks.push(this.#redeployTask(st, t))
    await Promise.all(tasks)
    return await this.#finish(st, kind, ids, { started, fatal, runningList, skipped })
  }

  /** The workflows of this sync: to read, to redeploy (pending), or skipped (and why). */
  async #targets (st: RunState, ids: string[] | null): Promise<{ toSync: SyncTarget[], toRedeploy: SyncTarget[], skipped: Skipped }> {
    const targets = ids !== null && ids.length === 0
      ? []
      : await this.#ctx.store.listSyncTargets(st.scope, { workflowIds: ids === null ? null : ids.filter(isUuid) })
    if (ids !== null) {
      const found = new Set(targets.map((t) => t.id))
      for (const id of ids) {
        if (!found.has(id)) failWorkflow(this.#ctx.log, st, id, new AppError('not_found', 'Workflow not found'))
      }
    }
    const toSync: SyncTarget[] = []
    const toRedeploy: SyncTarget[] = []
    const skipped: Skipped = []
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
    return { toSync, toRedeploy, skipped }
  }

  /** Reads the snapshot, then starts the passes (or the instance scan) into `tasks`. */
  async #startSync (st: RunState, kind: SyncType, toSync: SyncTarget[], tasks: Array<Promise<void>>): Promise<{ fatal: string | null, runningList: RunningList }> {
    const scan = kind === 'all' && this.#allStrategy === 'scan'
    let snap: Snapshot
    let flags: Promise<Listing | null> | null = null
    try {
      if (scan) {
        // The scan needs the ceiling and the running list; the active flags (drift) are read
        // meanwhile and only awaited at the end.
        const parts = this.#snapshots.parts(st.scope, kind, toSync)
        flags = parts.workflows
        flags.catch(() => {}) // awaited (and reported) later; not an unhandled rejection now
        const { ceiling, running } = await parts.executions
        snap = { ceiling, running, workflows: null }
      } else {
        snap = await this.#snapshots.read(st.scope, kind, toSync)
      }
    } catch (err) {
      this.#ctx.log.warn({ err, sync_type: kind }, 'sync: n8n snapshot failed')
      for (const t of toSync) failWorkflow(this.#ctx.log, st, t.id, err)
      return { fatal: isAppError(err) ? err.message : 'n8n could not be read', runningList: 'not_needed' }
    }
    if (scan && flags !== null) tasks.push(new InstanceScan(this.#ctx, st, snap, flags).run(toSync))
    else for (const t of toSync) tasks.push(this.#ctx.work.run(() => syncWorkflow(this.#ctx, st, t, snap)))
    return { fatal: null, runningList: snap.running === null ? 'unsupported' : 'supported' }
  }

  #redeployTask (st: RunState, t: SyncTarget): Promise<void> {
    const redeploy = this.#redeploy
    if (!redeploy) return Promise.resolve()
    return this.#ctx.work.run(async () => {
      try {
        await this.#ctx.n8nSlots.run(() => redeploy(st.scope, t.id))
        st.synced++
      } catch (err) {
        failWorkflow(this.#ctx.log, st, t.id, err)
      }
    })
  }

  /** The outcome: the sync_logs row, the answer, the log line and the metrics. */
  async #finish (st: RunState, kind: SyncType, ids: string[] | null, run: { started: number, fatal: string | null, runningList: RunningList, skipped: Skipped }): Promise<SyncResult> {
    const status: SyncStatus = st.failed === 0 ? 'success' : st.synced === 0 ? 'failed' : 'partial'
    const error = outcomeError(st, status, run.fatal)
    const errors = st.errors.slice(0, MAX_ERRORS)
    const details: Record<string, unknown> = {
      drift: st.drift,
      errors,
      running_list: run.runningList
    }
    if (st.errors.length > errors.length) details.errors_omitted = st.errors.length - errors.length
    if (run.skipped.length > 0) details.skipped = run.skipped
    if (ids !== null) details.workflow_ids = ids

    await this.#ctx.hooks.beforeLog?.()
    const durationMs = Math.round(performance.now() - run.started)
    const logId = await this.#ctx.store.recordSyncLog(st.scope, {
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
    this.#ctx.log.info({
      sync_log_id: logId,
      sync_type: kind,
      user_id: st.scope.kind === 'user' ? st.scope.userId : null,
      status,
      workflows_synced: st.synced,
      workflows_failed: st.failed,
      executions_ingested: st.ingested,
      drift: st.drift.length,
      duration_ms: durationMs
    }, 'sync finished')
    this.#metrics?.recordSync({ syncType: kind, status, durationMs, executionsIngested: st.ingested })
    return result
  }
}

/** Why the sync was not a success (null if it was). */
function outcomeError (st: RunState, status: SyncStatus, fatal: string | null): string | null {
  if (status === 'success') return null
  // n8n out of reach is said in so many words: it is the operator's to fix, not the workflows'.
  const down = st.errors.find((e) => e.code === 'n8n_unavailable')
  const unavailable = down === undefined ? null : down.message.startsWith('n8n is unavailable') ? down.message : `n8n is unavailable: ${down.message}`
  const someFailed = `${st.failed} of ${st.failed + st.synced} workflow(s) failed`
  return status === 'failed'
    ? unavailable ?? fatal ?? `all ${st.failed} workflow(s) failed: ${st.errors[0]?.message ?? ''}`
    : unavailable !== null ? `${someFailed}; ${unavailable}` : fatal ?? someFailed
}
