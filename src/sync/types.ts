// The sync engine's public types and the context its modules share (see README.md).
import type { Semaphore } from '../lib/semaphore.ts'
import type { Store } from '../store/store.ts'
import type { Scope } from '../store/scope.ts'
import type { N8nClient, N8nExecution } from '../services/n8n-client.ts'
import type { N8nIdentity } from '../services/ownership.ts'

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
  store: Store
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
  /** Where each finished sync run is counted (the metrics plugin's app.metrics); omitted: nowhere. */
  metrics?: SyncMetrics
}

/** A metrics sink for finished sync runs (duration, outcome, executions written to the ledger). */
export interface SyncMetrics {
  recordSync(run: { syncType: SyncType, status: SyncStatus, durationMs: number, executionsIngested: number }): void
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

/** One workflow of the drift listing: its active flag and what proves it is a row's own. */
export interface ListedWorkflow extends N8nIdentity {
  active: boolean
}
/** n8n workflow id → what the drift listing says of it. */
export type Listing = Map<string, ListedWorkflow>

/** What one sync read from n8n before any workflow is listed (README.md, "THE STOP POINT"). */
export interface Snapshot {
  ceiling: string
  /** n8n workflow id → its active runs; null: n8n cannot list them (fallback). */
  running: Map<string, N8nExecution[]> | null
  /** n8n workflow id → what the drift listing says of it; null: look each workflow up. */
  workflows: Listing | null
}

/** What the modules of one engine share: its dependencies, settings and n8n/work slots. */
export interface SyncContext {
  readonly store: Store
  readonly n8n: SyncN8n
  readonly log: SyncLogger
  readonly hooks: SyncHooks
  readonly now: () => Date
  /** Fallback without a running list: the longest a run may stay hidden. */
  readonly graceMs: number
  /** Workflows in progress (each holds at most one page in memory). */
  readonly work: Semaphore
  /** n8n calls in flight: N8N_CONCURRENCY. A workflow's transaction does not hold one. */
  readonly n8nSlots: Semaphore
  readonly concurrency: number
  readonly scanBufferLimit: number
  readonly scanLagIds: bigint
  readonly batchMax: number
}
