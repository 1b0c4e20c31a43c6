// The Store over a Database: server Postgres through `pg`, or embedded PGlite. A user's READS run
// in a transaction as role `authenticated` with the user's claims (RLS, as PostgREST does it);
// reads of one statement go in one round trip (readAsUser). Everything the service RECORDS
// (deploy outcomes, definitions and versions, sync results, idempotency records) runs in a
// transaction as `service_role`, through the SQL functions only service_role may execute (the
// trust model, migrations/20250113000000): the user a write acts for is passed as p_user_id and
// the function touches only that user's rows. A user's own delete keeps the user's claims (their
// token may delete their rows). The Supabase store does the same with its service-role key.
// Locks are session advisory locks.
import type { Database, PoolStats, Queryable } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import * as cleanupSql from './cleanup-store.ts'
import type { PurgeCounts } from './cleanup-store.ts'
import { AppError } from '../errors.ts'
import { databaseProblem } from '../db/errors.ts'
import { purgeEventLog } from './event-store.ts'
import * as tailSql from './live-tail-store.ts'
import type { LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution } from './live-tail-store.ts'
import { createOutcomeFromJson, workflowRowFromJson } from './rows.ts'
import { inScope, readInScope, serviceOnly, serviceScope } from './scope.ts'
import type { Scope } from './scope.ts'
import { advisoryKey } from './store.ts'
import type {
  CreateOutcome, ExecutionListQuery, IdempotencyClaim, LockOptions, LockResult, LockSpec, NewWorkflowInput, Store,
  SyncLogListQuery, WorkflowListQuery
} from './store.ts'
import * as statsSql from './stats-store.ts'
import type { ExecutionStatsQuery, ExecutionStatsRow } from './stats-store.ts'
import * as syncSql from './sync-store.ts'
import type { ExecutionInput, ExecutionRow, IngestJob, IngestOptions, IngestResult, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget } from './sync-store.ts'
import * as sql from './workflow-store.ts'
import type { DeployOutcome, IdempotencyRecord, ListedWorkflowRow, WorkflowChanges, WorkflowRow } from './workflow-store.ts'

function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new AppError('forbidden', 'This operation needs a signed-in user')
  return scope.userId
}

/** The user a service write acts for; null for the service's own (cron) work. */
function actingFor (scope: Scope): string | null {
  return scope.kind === 'user' ? scope.userId : null
}

function rowOrUndefined (r: Record<string, unknown> | null): WorkflowRow | undefined {
  return r ? workflowRowFromJson(r) : undefined
}

export class PostgresStore implements Store {
  readonly db: Database

  constructor (db: Database) {
    this.db = db
  }

  get kind (): 'pg' | 'pglite' {
    return this.db.kind
  }

  /** In the caller's scope, one transaction; database errors become problems. */
  private async tx<T> (scope: Scope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await inScope(this.db, scope, fn)
    } catch (err) {
      throw databaseProblem(err)
    }
  }

  /** As the service (service_role), one transaction: the bookkeeping writes, whoever asked. */
  private service<T> (fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.tx(serviceScope, fn)
  }

  /** In the caller's scope, statements of one round trip each (a user's reads). */
  private async read<T> (scope: Scope, fn: (q: Queryable) => Promise<T>): Promise<T> {
    try {
      return await readInScope(this.db, scope, fn)
    } catch (err) {
      throw databaseProblem(err)
    }
  }

  async ping (timeoutMs = 2000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, false); timer.unref() })
    try {
      return await Promise.race([this.db.query('select 1').then(() => true, () => false), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  poolStats (): PoolStats {
    return this.db.poolStats()
  }

  async close (): Promise<void> {
    await this.db.close()
  }

  // ---- workflows -------------------------------------------------------------------------------

  listWorkflows (scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]> {
    const filter: sql.ListFilter = { userId: userIdOf(scope), limit: q.limit }
    if (q.after) filter.after = q.after
    if (q.status) filter.status = q.status
    if (q.active !== undefined) filter.active = q.active
    if (q.definition === false) filter.definition = false
    return this.read(scope, (t) => sql.listWorkflows(t, filter))
  }

  getWorkflow (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    return this.read(scope, (t) => sql.getWorkflow(t, scope.kind === 'user' ? scope.userId : null, id))
  }

  async createWorkflow (scope: Scope, input: NewWorkflowInput, idempotency?: IdempotencyClaim): Promise<CreateOutcome> {
    const userId = userIdOf(scope)
    const r = await this.service((t) => sql.createWorkflow(t, {
      ...input,
      userId,
      ...(idempotency ? { idempotencyKey: idempotency.key, requestHash: idempotency.requestHash, ttlHours: idempotency.ttlHours } : {})
    }))
    return createOutcomeFromJson(r)
  }

  getIdempotencyRecord (scope: Scope, key: string): Promise<IdempotencyRecord | undefined> {
    const userId = userIdOf(scope)
    return this.read(scope, (t) => sql.getIdempotencyKey(t, userId, key))
  }

  async completeIdempotencyKey (scope: Scope, key: string, statusCode: number, response: Workflow): Promise<void> {
    const userId = userIdOf(scope)
    await this.service((t) => sql.completeIdempotencyKey(t, userId, key, statusCode, response))
  }

  async beginDeploy (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    return rowOrUndefined(await this.service((t) => sql.beginDeploy(t, actingFor(scope), id)))
  }

  async recordDeployOutcome (scope: Scope, id: string, outcome: DeployOutcome): Promise<WorkflowRow | undefined> {
    return rowOrUndefined(await this.service((t) => sql.recordDeployOutcome(t, actingFor(scope), id, outcome)))
  }

  async updateWorkflowDefinition (scope: Scope, id: string, changes: WorkflowChanges, expectedVersion?: number): Promise<WorkflowRow | undefined> {
    const userId = userIdOf(scope)
    return rowOrUndefined(await this.service((t) => sql.updateWorkflowDefinition(t, userId, id, changes, expectedVersion)))
  }

  async setWorkflowActive (scope: Scope, id: string, active: boolean): Promise<WorkflowRow | undefined> {
    const userId = userIdOf(scope)
    return rowOrUndefined(await this.service((t) => sql.setWorkflowActive(t, userId, id, active)))
  }

  deleteWorkflow (scope: Scope, id: string): Promise<boolean> {
    const userId = userIdOf(scope)
    return this.tx(scope, (t) => sql.deleteWorkflow(t, userId, id))
  }

  withLock<T> (_scope: Scope, lock: LockSpec, fn: () => Promise<T>, opts: LockOptions = {}): Promise<LockResult<T>> {
    const { namespace, key } = advisoryKey(lock)
    return this.db.withAdvisoryLock(namespace, key, fn, opts)
  }

  // ---- sync ------------------------------------------------------------------------------------

  listSyncTargets (scope: Scope, filter: { workflowIds?: string[] | null } = {}): Promise<SyncTarget[]> {
    return this.tx(scope, (t) => syncSql.listSyncTargets(t, filter))
  }

  // The sync's writes run as the service, for the scope's user (whose rows alone they may touch).
  ingestExecutions (scope: Scope, workflowId: string, executions: ExecutionInput[], syncedAt: Date, options: IngestOptions = {}): Promise<IngestResult> {
    return this.service((t) => syncSql.ingestExecutions(t, actingFor(scope), workflowId, executions, syncedAt, options))
  }

  ingestExecutionsBatch (scope: Scope, jobs: IngestJob[], syncedAt: Date): Promise<IngestResult[]> {
    return this.service((t) => syncSql.ingestExecutionsBatch(t, actingFor(scope), jobs, syncedAt))
  }

  async ingestScanBatch (scope: Scope, jobs: ScanJob[], syncedAt: Date, options: { ceiling: string, started_before?: string }): Promise<IngestResult[]> {
    serviceOnly(scope, 'The instance scan')
    return await this.service((t) => syncSql.ingestScanBatch(t, jobs, syncedAt, options))
  }

  workflowsWithOpenRows (scope: Scope, workflowIds: string[]): Promise<string[]> {
    return this.tx(scope, (t) => syncSql.workflowsWithOpenRows(t, workflowIds))
  }

  async raiseScanFloors (scope: Scope, workflowIds: string[], floor: string): Promise<number> {
    serviceOnly(scope, 'The instance scan')
    return await this.service((t) => syncSql.raiseScanFloors(t, workflowIds, floor))
  }

  markWorkflowMissing (scope: Scope, workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date): Promise<boolean> {
    return this.service((t) => syncSql.markWorkflowMissing(t, actingFor(scope), workflowId, n8nWorkflowId, error, syncedAt))
  }

  recordSyncLog (scope: Scope, log: SyncLogInput): Promise<string> {
    // a user's sync logs for that user, whatever the input says
    const entry = scope.kind === 'user' ? { ...log, user_id: scope.userId } : log
    return this.service((t) => syncSql.recordSyncLog(t, entry))
  }

  listExecutionHistory (scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined> {
    return this.tx(scope, async (t) => {
      if (!await syncSql.workflowVisible(t, workflowId)) return undefined
      return await syncSql.listExecutionRows(t, workflowId, q)
    })
  }

  listSyncLogs (scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]> {
    return this.tx(scope, (t) => syncSql.listSyncLogs(t, q))
  }

  async syncStats (scope: Scope, since: Date): Promise<SyncStatsRow[]> {
    const res = await this.tx(scope, (t) => t.query<SyncStatsRow>(
      'select sync_type, status, count, avg_duration_ms from public.sync_log_stats(p_since => $1::timestamptz)', [since.toISOString()]))
    return res.rows
  }

  executionStats (scope: Scope, q: ExecutionStatsQuery): Promise<ExecutionStatsRow[] | undefined> {
    return this.read(scope, async (t) => {
      if (q.workflowId !== null && !await syncSql.workflowVisible(t, q.workflowId)) return undefined
      return await statsSql.executionStats(t, q)
    })
  }

  // ---- cleanup ---------------------------------------------------------------------------------

  purgeExpiredData (scope: Scope, syncLogDays: number, executionDays: number, dryRun: boolean): Promise<PurgeCounts> {
    return this.tx(scope, (t) => cleanupSql.purgeExpiredData(t, syncLogDays, executionDays, dryRun))
  }

  ownedN8nWorkflows (scope: Scope, n8nIds: string[], rowIds: string[]): Promise<{ n8nIds: Set<string>, rowIds: Set<string> }> {
    return this.tx(scope, (t) => cleanupSql.ownedN8nWorkflows(t, n8nIds, rowIds))
  }

  purgeEventLog (scope: Scope, olderThanHours: number, dryRun: boolean): Promise<number> {
    return this.tx(scope, (t) => purgeEventLog(t, olderThanHours, dryRun))
  }

  // ---- live tail -------------------------------------------------------------------------------

  liveTailClaim (scope: Scope, holder: string): Promise<LiveTailState> {
    return this.tx(scope, (t) => tailSql.liveTailClaim(t, holder))
  }

  liveTailIngest (scope: Scope, epoch: string, write: LiveTailWrite, syncedAt: Date): Promise<LiveTailWriteResult> {
    return this.tx(scope, (t) => tailSql.liveTailIngest(t, epoch, write, syncedAt))
  }

  liveTailOpenExecutions (scope: Scope, limit: number): Promise<OpenExecution[]> {
    return this.tx(scope, (t) => tailSql.liveTailOpenExecutions(t, limit))
  }
}
