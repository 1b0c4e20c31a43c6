// The one interface for everything the routes, the workflow service, the sync engine, cleanup and
// events persist. Two implementations:
//   - PostgresStore (postgres-store.ts): a Database (server Postgres through `pg`, or embedded
//     PGlite); RLS transactions as role `authenticated` with the caller's claims; advisory locks.
//   - SupabaseStore (supabase-store.ts): supabase-js against a Supabase project (URL + API keys,
//     no database password); a per-request client carrying the caller's access token, so
//     Supabase's own RLS applies; the service-role client only for the service scope; lease locks.
// Every write that must be atomic is a SQL function of supabase/migrations, called by both through
// one table (operations.ts, run by operation-store.ts): one definition of each write for both modes.
// This file and rows.ts hold no SQL.
//
// Every operation takes the Scope it runs as: a signed-in user (RLS: only their rows exist) or the
// service (cron routes only). "Not visible" and "does not exist" are the same answer (undefined).
import type { PoolStats } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import type {
  DeployOutcome, EventLogPosition, EventLogRow, ExecutionInput, ExecutionRow, ExecutionStatsQuery, ExecutionStatsRow, IdempotencyRecord,
  IngestJob, IngestOptions, IngestResult, ListedWorkflowRow, LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution,
  PurgeCounts, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget, WorkflowChanges, WorkflowRow
} from './rows.ts'
import type { ScanBatchOptions } from './ingest-options.ts'
import type { Scope } from './scope.ts'

// The row and job types the services and the sync engine use, from here (the SQL modules stay the stores').
export type { ExecutionInput, ExecutionRow, IngestJob, IngestOptions, IngestResult, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget } from './sync-store.ts'
export type { LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution, TailIdentity } from './live-tail-store.ts'

export type StoreKind = 'pg' | 'pglite' | 'supabase'

/** The channel the mvp_workflows trigger notifies on (20250110000000_workflow_events.sql): GET /events' feed. */
export const EVENTS_CHANNEL = 'workflow_sync_events'

export interface WorkflowListQuery {
  limit: number
  /** Keyset position: rows strictly older than (createdAt, id). */
  after?: { createdAt: string, id: string }
  status?: string
  active?: boolean
  /** false: summaries, without nodes, connections and settings. Default true. */
  definition?: boolean
}

export interface NewWorkflowInput {
  name: string
  description: string | null
  nodes: unknown[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
}

export interface IdempotencyClaim {
  key: string
  /** SHA-256 of the request body: the same key with another body is a conflict. */
  requestHash: string
  ttlHours: number
}

/** What POST /workflows's database half did. */
export type CreateOutcome =
  | { outcome: 'created', workflow: WorkflowRow }
  /** An earlier request with this key inserted the row, then died before its answer was stored. */
  | { outcome: 'resumed', workflow: WorkflowRow }
  /** An earlier request with this key finished: its answer. */
  | { outcome: 'replay', statusCode: number, response: Workflow }

export interface ExecutionListQuery {
  limit: number
  /** Keyset: executions whose n8n id is below this one (n8n ids as decimal text). */
  beforeSeq: string | null
  status: string | null
}

export interface SyncLogListQuery {
  limit: number
  before: { created: string, id: string } | null
}

/**
 * Named locks, one holder at a time across replicas: a deploy (or delete) of a workflow, a user's
 * sync, the all-users sync, the cleanup. `ownerId` is the user a lock belongs to (the Supabase
 * store's leases live under the user's key prefix, which RLS lets only that user and the service
 * take).
 */
export type LockSpec =
  | { name: 'deploy', workflowId: string, ownerId: string }
  | { name: 'sync_user', ownerId: string }
  | { name: 'sync_all' }
  | { name: 'cleanup' }
  /** The live tail's leader (held for as long as the replica leads). */
  | { name: 'live_tail' }

export interface LockOptions {
  /** false: answer `{ acquired: false }` at once when the lock is held. Default: wait. */
  wait?: boolean
  /** Longest wait; then 409 conflict. Default 120 000. */
  timeoutMs?: number
}

export type LockResult<T> = { acquired: true, value: T } | { acquired: false }

export interface Store {
  readonly kind: StoreKind

  // ---- operations ----------------------------------------------------------------------------
  /** Whether the database answers (GET /ready). Never throws. */
  ping(timeoutMs?: number): Promise<boolean>
  /** Connection pool figures (metrics); null when there is no pool (Supabase). */
  poolStats(): PoolStats | null
  close(): Promise<void>

  // ---- workflows (user scope unless said otherwise) -----------------------------------------
  /** The caller's workflows, newest first (created_at desc, id desc). */
  listWorkflows(scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]>
  /**
   * Optional: a stamp of the caller's workflows that moves whenever one of them is inserted,
   * updated or deleted (anywhere: this process, another replica, the Data API). A page read after
   * the stamp is current while the stamp is unchanged. Stores without an event log omit it.
   */
  workflowListStamp?(scope: Scope): Promise<string>
  /** One workflow (user: their own; service: any). */
  getWorkflow(scope: Scope, id: string): Promise<WorkflowRow | undefined>
  /** Atomic: claim the idempotency key, insert the `pending` row, link it (create_workflow). */
  createWorkflow(scope: Scope, input: NewWorkflowInput, idempotency?: IdempotencyClaim): Promise<CreateOutcome>
  getIdempotencyRecord(scope: Scope, key: string): Promise<IdempotencyRecord | undefined>
  /** Stores the answer later requests with the key replay (complete_idempotency_key). */
  completeIdempotencyKey(scope: Scope, key: string, statusCode: number, response: Workflow): Promise<void>
  /** Atomic: lock the row, count the attempt; the row as before counting (begin_deploy). User or service. */
  beginDeploy(scope: Scope, id: string): Promise<WorkflowRow | undefined>
  /** A deploy's state change (record_deploy_outcome). User or service. */
  recordDeployOutcome(scope: Scope, id: string, outcome: DeployOutcome): Promise<WorkflowRow | undefined>
  /** PATCH: bumps the version; with expectedVersion, a mismatch throws 412 (update_workflow_definition). */
  updateWorkflowDefinition(scope: Scope, id: string, changes: WorkflowChanges, expectedVersion?: number): Promise<WorkflowRow | undefined>
  /** After n8n (de)activated it: `active` follows, last_error is cleared (set_workflow_active). */
  setWorkflowActive(scope: Scope, id: string, active: boolean): Promise<WorkflowRow | undefined>
  deleteWorkflow(scope: Scope, id: string): Promise<boolean>
  /** Runs fn while holding the lock (advisory lock, or a renewed lease in Supabase mode). */
  withLock<T>(scope: Scope, lock: LockSpec, fn: () => Promise<T>, opts?: LockOptions): Promise<LockResult<T>>

  // ---- sync -----------------------------------------------------------------------------------
  /** Workflows to sync (user: theirs; service: everyone's), ordered by user_id, id. */
  listSyncTargets(scope: Scope, filter?: { workflowIds?: string[] | null }): Promise<SyncTarget[]>
  /** One page of n8n executions into the ledger with its counts, atomically (ingest_executions). */
  ingestExecutions(scope: Scope, workflowId: string, executions: ExecutionInput[], syncedAt: Date, options?: IngestOptions): Promise<IngestResult>
  /** Several ingest_executions in one transaction, all or nothing (ingest_executions_batch). Results in job order. */
  ingestExecutionsBatch(scope: Scope, jobs: IngestJob[], syncedAt: Date): Promise<IngestResult[]>
  /** The instance scan's writes for many workflows (ingest_scan_batch; service). Results in job order. */
  ingestScanBatch(scope: Scope, jobs: ScanJob[], syncedAt: Date, options: ScanBatchOptions): Promise<IngestResult[]>
  /** Which of these workflows have open ledger rows (not final, not vanished). */
  workflowsWithOpenRows(scope: Scope, workflowIds: string[]): Promise<string[]>
  /** The instance scan's stop point for idle workflows (raise_scan_floors; service). Answers the rows changed. */
  raiseScanFloors(scope: Scope, workflowIds: string[], floor: string): Promise<number>
  /** Drift: the workflow is gone from n8n (mark_workflow_missing). */
  markWorkflowMissing(scope: Scope, workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date): Promise<boolean>
  /** The sync_logs row of a sync or cleanup (record_sync_log); answers its id. */
  recordSyncLog(scope: Scope, log: SyncLogInput): Promise<string>
  /** Execution history of a workflow, newest first; undefined when the workflow is not visible. */
  listExecutionHistory(scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined>
  /** Sync history, newest first (user: theirs; service: all). */
  listSyncLogs(scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]>
  /** Per sync_type and status since `since` (sync_log_stats). */
  syncStats(scope: Scope, since: Date): Promise<SyncStatsRow[]>
  /**
   * Execution analytics per bucket from the ledger's rollup (workflow_execution_stats): one workflow
   * (undefined when it is not visible) or, with workflowId null, all of the caller's.
   */
  executionStats(scope: Scope, q: ExecutionStatsQuery): Promise<ExecutionStatsRow[] | undefined>

  // ---- cleanup (service scope) --------------------------------------------------------------------
  /** Retention of sync logs, ledger rows, idempotency keys (purge_expired_data). */
  purgeExpiredData(scope: Scope, syncLogDays: number, executionDays: number, dryRun: boolean): Promise<PurgeCounts>
  /** Which of these n8n ids / marker row ids a workflow row owns (owned_n8n_workflows). */
  ownedN8nWorkflows(scope: Scope, n8nIds: string[], rowIds: string[]): Promise<{ n8nIds: Set<string>, rowIds: Set<string> }>
  /** Retention of the event log (purge_workflow_events); answers the rows (to be) removed. */
  purgeEventLog(scope: Scope, olderThanHours: number, dryRun: boolean): Promise<number>

  // ---- live tail (service scope; call while holding the live_tail lock) ----------------------
  /** A new leader's fencing token and the tail's state (live_tail_claim). */
  liveTailClaim(scope: Scope, holder: string): Promise<LiveTailState>
  /** One tick's writes, fenced by the epoch (live_tail_ingest); a stale epoch throws 409 `fenced`. */
  liveTailIngest(scope: Scope, epoch: string, write: LiveTailWrite, syncedAt: Date): Promise<LiveTailWriteResult>
  /** The ledger's open rows, oldest first (live_tail_open_executions). */
  liveTailOpenExecutions(scope: Scope, limit: number): Promise<OpenExecution[]>

  // ---- live events (GET /events; the LISTEN connection itself is the Database's) -------------
  /** The user's newest event id and the purge horizon (user scope). */
  eventLogPosition(scope: Scope): Promise<EventLogPosition>
  /** The user's events after `afterId`, oldest first, at most `limit` (user scope). */
  readEventLog(scope: Scope, afterId: number, limit: number): Promise<EventLogRow[]>
  /** Rows by id in the contract's shape (user: their own; service: anyone's, for a batch of many users' events). */
  workflowsByIds(scope: Scope, ids: string[]): Promise<Workflow[]>
}

/** Advisory-lock namespaces of the Postgres store (the same numbers as before the store existed). */
export const ADVISORY_NAMESPACES: Readonly<Record<LockSpec['name'], number>> = Object.freeze({
  sync_user: 741_853,
  sync_all: 741_854,
  cleanup: 741_855,
  live_tail: 741_856,
  deploy: 741_860
})

/** The advisory-lock key of a lock (Postgres store). */
export function advisoryKey (lock: LockSpec): { namespace: number, key: string } {
  switch (lock.name) {
    case 'deploy': return { namespace: ADVISORY_NAMESPACES.deploy, key: lock.workflowId }
    case 'sync_user': return { namespace: ADVISORY_NAMESPACES.sync_user, key: lock.ownerId }
    case 'sync_all': return { namespace: ADVISORY_NAMESPACES.sync_all, key: 'all' }
    case 'cleanup': return { namespace: ADVISORY_NAMESPACES.cleanup, key: 'cleanup' }
    case 'live_tail': return { namespace: ADVISORY_NAMESPACES.live_tail, key: 'live_tail' }
  }
}

/** The lease key of a lock (Supabase store; RLS lets a user take only `user:<their id>:…`). */
export function leaseKey (lock: LockSpec): string {
  switch (lock.name) {
    case 'deploy': return `user:${lock.ownerId}:deploy:${lock.workflowId}`
    case 'sync_user': return `user:${lock.ownerId}:sync`
    case 'sync_all': return 'service:sync_all'
    case 'cleanup': return 'service:cleanup'
    case 'live_tail': return 'service:live_tail'
  }
}
