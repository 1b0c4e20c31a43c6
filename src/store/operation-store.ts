// What both stores do the same way: every Store operation that is a SQL function runs the entry of
// the operation table (operations.ts) through `invoke`, which each store implements once (a select
// for Postgres, an rpc for Supabase). The arguments, the scope checks, the "returned nothing"
// checks, the decoders and the paging are written here, once.
import type { PoolStats } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { operation } from './operations.ts'
import type { Args, InputOf, Operation, OperationName, ResultOf } from './operations.ts'
import type {
  DeployOutcome, EventLogPosition, EventLogRow, ExecutionInput, ExecutionRow, ExecutionStatsQuery, ExecutionStatsRow, IdempotencyRecord,
  IngestJob, IngestOptions, IngestResult, ListedWorkflowRow, LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution,
  PurgeCounts, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget, WorkflowChanges, WorkflowRow
} from './rows.ts'
import { serviceOnly } from './scope.ts'
import type { ScanBatchOptions } from './ingest-options.ts'
import type { Scope } from './scope.ts'
import type {
  CreateOutcome, ExecutionListQuery, IdempotencyClaim, LockOptions, LockResult, LockSpec, NewWorkflowInput, Store, StoreKind,
  SyncLogListQuery, WorkflowListQuery
} from './store.ts'

/** list_sync_targets' page: Supabase projects cap answers at 1000 rows by default (max_rows). */
export const TARGET_PAGE = 1000

export abstract class OperationStore implements Store {
  abstract readonly kind: StoreKind
  /** Most ids one call may carry where the answer has a row per id (the row cap of the transport). */
  protected readonly maxIdsPerCall: number = Infinity

  /** Calls the operation's SQL function with these arguments, as its role; the answer in its shape. */
  protected abstract invoke (scope: Scope, op: Operation<never, unknown>, args: Args): Promise<unknown>

  /** Runs one entry of the operation table. */
  protected async run<K extends OperationName> (name: K, scope: Scope, input: InputOf<K>): Promise<ResultOf<K>> {
    const op = operation(name)
    if (op.serviceOnly !== undefined) serviceOnly(scope, op.serviceOnly)
    const raw = await this.invoke(scope, op as Operation<never, unknown>, op.args(input, scope))
    return op.decode(raw, input)
  }

  // ---- table reads and what is not a SQL function: each store's own ---------------------------
  abstract ping (timeoutMs?: number): Promise<boolean>
  abstract poolStats (): PoolStats | null
  abstract close (): Promise<void>
  abstract listWorkflows (scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]>
  abstract getWorkflow (scope: Scope, id: string): Promise<WorkflowRow | undefined>
  abstract getIdempotencyRecord (scope: Scope, key: string): Promise<IdempotencyRecord | undefined>
  abstract deleteWorkflow (scope: Scope, id: string): Promise<boolean>
  abstract withLock<T> (scope: Scope, lock: LockSpec, fn: () => Promise<T>, opts?: LockOptions): Promise<LockResult<T>>
  abstract listExecutionHistory (scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined>
  abstract listSyncLogs (scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]>
  abstract eventLogPosition (scope: Scope): Promise<EventLogPosition>
  abstract readEventLog (scope: Scope, afterId: number, limit: number): Promise<EventLogRow[]>
  abstract workflowsByIds (scope: Scope, ids: string[]): Promise<Workflow[]>
  /** Whether the caller may see the workflow (RLS decides for users). */
  protected abstract workflowVisible (scope: Scope, id: string): Promise<boolean>

  // ---- workflows -------------------------------------------------------------------------------

  createWorkflow (scope: Scope, input: NewWorkflowInput, idempotency?: IdempotencyClaim): Promise<CreateOutcome> {
    return this.run('createWorkflow', scope, { input, idempotency })
  }

  completeIdempotencyKey (scope: Scope, key: string, statusCode: number, response: Workflow): Promise<void> {
    return this.run('completeIdempotencyKey', scope, { key, statusCode, response })
  }

  beginDeploy (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    return this.run('beginDeploy', scope, { id })
  }

  recordDeployOutcome (scope: Scope, id: string, outcome: DeployOutcome): Promise<WorkflowRow | undefined> {
    return this.run('recordDeployOutcome', scope, { id, outcome })
  }

  updateWorkflowDefinition (scope: Scope, id: string, changes: WorkflowChanges, expectedVersion?: number): Promise<WorkflowRow | undefined> {
    return this.run('updateWorkflowDefinition', scope, { id, changes, expectedVersion })
  }

  setWorkflowActive (scope: Scope, id: string, active: boolean): Promise<WorkflowRow | undefined> {
    return this.run('setWorkflowActive', scope, { id, active })
  }

  // ---- sync ------------------------------------------------------------------------------------

  /** Every target, in keyset pages of TARGET_PAGE (the effective stop point is a join: an rpc). */
  async listSyncTargets (scope: Scope, filter: { workflowIds?: string[] | null } = {}): Promise<SyncTarget[]> {
    const workflowIds = filter.workflowIds ?? null
    if (workflowIds !== null && workflowIds.length === 0) return []
    const out: SyncTarget[] = []
    let after: SyncTarget | undefined
    for (;;) {
      const page = await this.run('listSyncTargets', scope, { workflowIds, after, limit: TARGET_PAGE })
      out.push(...page)
      after = page.at(-1)
      if (page.length < TARGET_PAGE || !after) return out
    }
  }

  ingestExecutions (scope: Scope, workflowId: string, executions: ExecutionInput[], syncedAt: Date, options: IngestOptions = {}): Promise<IngestResult> {
    return this.run('ingestExecutions', scope, { workflowId, executions, syncedAt, options })
  }

  ingestExecutionsBatch (scope: Scope, jobs: IngestJob[], syncedAt: Date): Promise<IngestResult[]> {
    return this.run('ingestExecutionsBatch', scope, { jobs, syncedAt })
  }

  ingestScanBatch (scope: Scope, jobs: ScanJob[], syncedAt: Date, options: ScanBatchOptions): Promise<IngestResult[]> {
    return this.run('ingestScanBatch', scope, { jobs, syncedAt, options })
  }

  async workflowsWithOpenRows (scope: Scope, workflowIds: string[]): Promise<string[]> {
    if (workflowIds.length <= this.maxIdsPerCall) return await this.run('workflowsWithOpenRows', scope, { workflowIds })
    const out: string[] = []
    // the answer (one row per id at most) stays under the transport's row cap
    for (let i = 0; i < workflowIds.length; i += this.maxIdsPerCall) {
      out.push(...await this.run('workflowsWithOpenRows', scope, { workflowIds: workflowIds.slice(i, i + this.maxIdsPerCall) }))
    }
    return out
  }

  raiseScanFloors (scope: Scope, workflowIds: string[], floor: string): Promise<number> {
    return this.run('raiseScanFloors', scope, { workflowIds, floor })
  }

  markWorkflowMissing (scope: Scope, workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date): Promise<boolean> {
    return this.run('markWorkflowMissing', scope, { workflowId, n8nWorkflowId, error, syncedAt })
  }

  recordSyncLog (scope: Scope, log: SyncLogInput): Promise<string> {
    return this.run('recordSyncLog', scope, log)
  }

  syncStats (scope: Scope, since: Date): Promise<SyncStatsRow[]> {
    return this.run('syncStats', scope, { since })
  }

  async executionStats (scope: Scope, q: ExecutionStatsQuery): Promise<ExecutionStatsRow[] | undefined> {
    if (q.workflowId !== null && !await this.workflowVisible(scope, q.workflowId)) return undefined
    return await this.run('executionStats', scope, q)
  }

  // ---- cleanup ---------------------------------------------------------------------------------

  purgeExpiredData (scope: Scope, syncLogDays: number, executionDays: number, dryRun: boolean): Promise<PurgeCounts> {
    return this.run('purgeExpiredData', scope, { syncLogDays, executionDays, dryRun })
  }

  ownedN8nWorkflows (scope: Scope, n8nIds: string[], rowIds: string[]): Promise<{ n8nIds: Set<string>, rowIds: Set<string> }> {
    return this.run('ownedN8nWorkflows', scope, { n8nIds, rowIds })
  }

  purgeEventLog (scope: Scope, olderThanHours: number, dryRun: boolean): Promise<number> {
    return this.run('purgeEventLog', scope, { olderThanHours, dryRun })
  }

  // ---- live tail -------------------------------------------------------------------------------

  liveTailClaim (scope: Scope, holder: string): Promise<LiveTailState> {
    return this.run('liveTailClaim', scope, { holder })
  }

  liveTailIngest (scope: Scope, epoch: string, write: LiveTailWrite, syncedAt: Date): Promise<LiveTailWriteResult> {
    return this.run('liveTailIngest', scope, { epoch, write, syncedAt })
  }

  liveTailOpenExecutions (scope: Scope, limit: number): Promise<OpenExecution[]> {
    return this.run('liveTailOpenExecutions', scope, { limit })
  }
}
