// THE table of the store's operations that are SQL functions of supabase/migrations: for each, the
// function, the role it runs as, its named arguments (with their Postgres types) and the decoder of
// its answer. Both stores run this table (OperationStore): the Postgres store as
// `select public.<fn>(p_a => $1::<type>, ...)`, the Supabase store as `rpc('<fn>', { p_a: ... })`,
// so the two cannot send different arguments or read the answers differently.
// test/store/store-contract.ts checks that every function named here exists with these arguments.
//
// Role: `service` = the bookkeeping writes (deploy outcomes, definitions, sync results, idempotency
// records, leases), executable by service_role only and given the user they act for as p_user_id
// (the trust model, migrations/20250113000000); `caller` = in the caller's own scope (RLS for a
// user); `read` = the caller's scope, one read statement (the Postgres store sends it in one round
// trip; its arguments must be scalars).
//
// Shape of the answer: `value` (one scalar or jsonb), `rows` (a table function), `values` (setof a
// scalar). Decoders receive null / [] when the function answered nothing.
import { AppError } from '../errors.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { createOutcomeFromJson, executionItem, executionStatsRow, workflowRowFromJson } from './rows.ts'
import type {
  DeployOutcome, ExecutionInput, ExecutionStatsQuery, ExecutionStatsRow, IngestJob, IngestOptions, IngestResult, LiveTailState,
  LiveTailWrite, LiveTailWriteResult, OpenExecution, PurgeCounts, ScanJob, SyncLogInput, SyncStatsRow, SyncTarget,
  WorkflowChanges, WorkflowRow
} from './rows.ts'
import type { ScanBatchOptions } from './ingest-options.ts'
import type { Scope } from './scope.ts'
import type { CreateOutcome, IdempotencyClaim, NewWorkflowInput } from './store.ts'

export type ArgType = 'uuid' | 'uuid[]' | 'text' | 'text[]' | 'integer' | 'bigint' | 'boolean' | 'jsonb' | 'timestamptz' | 'interval'

/** One named argument. A jsonb argument may come as JSON text already (`json`): the scan's buffers. */
export interface Arg { type: ArgType, value: unknown, json?: string }
export type Args = Record<string, Arg>

export type Role = 'service' | 'caller' | 'read'
export type Shape = 'value' | 'rows' | 'values'

export interface Operation<I, R> {
  fn: string
  role: Role
  shape: Shape
  /** The scope must be the service's own (its text names the work in the 403). */
  serviceOnly?: string
  args(input: I, scope: Scope): Args
  decode(raw: unknown, input: I): R
}

/** The user of a user scope; 403 for the service's own scope. */
export function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new AppError('forbidden', 'This operation needs a signed-in user')
  return scope.userId
}

/** The user a service write acts for; null for the service's own (cron) work. */
export function actingFor (scope: Scope): string | null {
  return scope.kind === 'user' ? scope.userId : null
}

const a = (type: ArgType, value: unknown): Arg => ({ type, value })
const ts = (d: Date): Arg => a('timestamptz', d.toISOString())

function required<T> (fn: string) {
  return (raw: unknown): T => {
    if (raw === null || raw === undefined) throw new Error(`${fn} returned nothing`)
    return raw as T
  }
}

function resultsFor<J> (label: string) {
  return (raw: unknown, jobs: J[]): IngestResult[] => {
    if (!Array.isArray(raw) || raw.length !== jobs.length) throw new Error(`${label} returned an unexpected answer`)
    return raw as IngestResult[]
  }
}

const rowOrUndefined = (raw: unknown): WorkflowRow | undefined => raw ? workflowRowFromJson(raw as Record<string, unknown>) : undefined
const rowsOf = <T>(raw: unknown): T[] => (Array.isArray(raw) ? raw as T[] : [])
const isTrue = (raw: unknown): boolean => raw === true
const leaseArgs = (i: { key: string, holder: string, ttlSeconds: number }): Args => ({
  p_key: a('text', i.key), p_holder: a('text', i.holder), p_ttl_seconds: a('integer', i.ttlSeconds)
})

// ---- argument encoders -------------------------------------------------------------------------

/** The JSON items live_tail_ingest takes (ingest_executions' fields plus workflowId). */
export function tailItems (items: ExecutionInput[]): object[] {
  return items.map((e) => ({ ...executionItem(e), workflowId: e.workflowId }))
}

/** record_deploy_outcome's p_outcome: keys present only for the columns to set. */
export function deployOutcomeJson (o: DeployOutcome): Record<string, unknown> {
  const out: Record<string, unknown> = { status: o.status, last_error: o.lastError }
  if (o.n8nWorkflowId !== undefined) out.n8n_workflow_id = o.n8nWorkflowId
  if (o.active !== undefined) out.active = o.active
  return out
}

/** update_workflow_definition's p_changes: only the keys being changed. */
export function workflowChangesJson (c: WorkflowChanges): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (c.name !== undefined) out.name = c.name
  if (c.description !== undefined) out.description = c.description
  if (c.nodes !== undefined) out.nodes = c.nodes
  if (c.connections !== undefined) out.connections = c.connections
  if (c.settings !== undefined) out.settings = c.settings
  return out
}

// ---- the table ---------------------------------------------------------------------------------

const SCAN = 'The instance scan'

export const OPERATIONS = {
  createWorkflow: {
    fn: 'create_workflow',
    role: 'service',
    shape: 'value',
    args: (i: { input: NewWorkflowInput, idempotency?: IdempotencyClaim | undefined }, s: Scope): Args => ({
      p_user_id: a('uuid', userIdOf(s)),
      p_name: a('text', i.input.name),
      p_description: a('text', i.input.description),
      p_nodes: a('jsonb', i.input.nodes),
      p_connections: a('jsonb', i.input.connections),
      p_settings: a('jsonb', i.input.settings),
      ...(i.idempotency
        ? { p_idempotency_key: a('text', i.idempotency.key), p_request_hash: a('text', i.idempotency.requestHash), p_ttl_hours: a('integer', i.idempotency.ttlHours) }
        : {})
    }),
    decode: (raw: unknown): CreateOutcome => createOutcomeFromJson(required<Record<string, unknown>>('create_workflow')(raw))
  },
  completeIdempotencyKey: {
    fn: 'complete_idempotency_key',
    role: 'service',
    shape: 'value',
    args: (i: { key: string, statusCode: number, response: Workflow }, s: Scope): Args => ({
      p_user_id: a('uuid', userIdOf(s)), p_idempotency_key: a('text', i.key), p_status_code: a('integer', i.statusCode), p_response: a('jsonb', i.response)
    }),
    decode: (): void => {}
  },
  beginDeploy: {
    fn: 'begin_deploy',
    role: 'service',
    shape: 'value',
    args: (i: { id: string }, s: Scope): Args => ({ p_workflow_id: a('uuid', i.id), p_user_id: a('uuid', actingFor(s)) }),
    decode: rowOrUndefined
  },
  recordDeployOutcome: {
    fn: 'record_deploy_outcome',
    role: 'service',
    shape: 'value',
    args: (i: { id: string, outcome: DeployOutcome }, s: Scope): Args => ({
      p_workflow_id: a('uuid', i.id), p_outcome: a('jsonb', deployOutcomeJson(i.outcome)), p_user_id: a('uuid', actingFor(s))
    }),
    decode: rowOrUndefined
  },
  updateWorkflowDefinition: {
    fn: 'update_workflow_definition',
    role: 'service',
    shape: 'value',
    args: (i: { id: string, changes: WorkflowChanges, expectedVersion?: number | undefined }, s: Scope): Args => ({
      p_workflow_id: a('uuid', i.id),
      p_user_id: a('uuid', userIdOf(s)),
      p_changes: a('jsonb', workflowChangesJson(i.changes)),
      p_expected_version: a('integer', i.expectedVersion ?? null)
    }),
    decode: rowOrUndefined
  },
  setWorkflowActive: {
    fn: 'set_workflow_active',
    role: 'service',
    shape: 'value',
    args: (i: { id: string, active: boolean }, s: Scope): Args => ({ p_workflow_id: a('uuid', i.id), p_active: a('boolean', i.active), p_user_id: a('uuid', userIdOf(s)) }),
    decode: rowOrUndefined
  },

  // ---- sync ----
  /** One keyset page (1,000 rows: what a Supabase project answers at most) of the sync's targets. */
  listSyncTargets: {
    fn: 'list_sync_targets',
    role: 'caller',
    shape: 'rows',
    args: (i: { workflowIds: string[] | null, after: SyncTarget | undefined, limit: number }): Args => ({
      p_workflow_ids: a('uuid[]', i.workflowIds),
      p_after_user: a('uuid', i.after?.user_id ?? null),
      p_after_id: a('uuid', i.after?.id ?? null),
      p_limit: a('integer', i.limit)
    }),
    decode: (raw: unknown): SyncTarget[] => rowsOf<SyncTarget>(raw)
  },
  // The sync's writes run as the service, for the scope's user (whose rows alone they may touch).
  ingestExecutions: {
    fn: 'ingest_user_executions',
    role: 'service',
    shape: 'value',
    args: (i: { workflowId: string, executions: ExecutionInput[], syncedAt: Date, options: IngestOptions }, s: Scope): Args => ({
      p_user_id: a('uuid', actingFor(s)),
      p_workflow_id: a('uuid', i.workflowId),
      p_executions: a('jsonb', i.executions.map(executionItem)),
      p_synced_at: ts(i.syncedAt),
      p_options: a('jsonb', i.options)
    }),
    decode: required<IngestResult>('ingest_executions')
  },
  ingestExecutionsBatch: {
    fn: 'ingest_user_executions_batch',
    role: 'service',
    shape: 'value',
    args: (i: { jobs: IngestJob[], syncedAt: Date }, s: Scope): Args => ({
      p_user_id: a('uuid', actingFor(s)),
      p_batches: a('jsonb', i.jobs.map((j) => ({ workflow_id: j.workflowId, executions: j.executions.map(executionItem), options: j.options ?? {} }))),
      p_synced_at: ts(i.syncedAt)
    }),
    decode: (raw: unknown, i: { jobs: IngestJob[] }): IngestResult[] => resultsFor<IngestJob>('ingest_executions_batch')(raw, i.jobs)
  },
  ingestScanBatch: {
    fn: 'ingest_scan_batch',
    role: 'service',
    shape: 'value',
    serviceOnly: SCAN,
    args: (i: { jobs: ScanJob[], syncedAt: Date, options: ScanBatchOptions }): Args => ({
      // the items are JSON text already (executionJson): joined, never parsed again
      p_batch: { type: 'jsonb', value: null, json: '[' + i.jobs.map((j) => `{"workflow_id":${JSON.stringify(j.workflowId)},"final":${j.final},"executions":[${j.items.join(',')}]}`).join(',') + ']' },
      p_synced_at: ts(i.syncedAt),
      p_options: a('jsonb', i.options)
    }),
    decode: (raw: unknown, i: { jobs: ScanJob[] }): IngestResult[] => resultsFor<ScanJob>('ingest_scan_batch')(raw, i.jobs)
  },
  workflowsWithOpenRows: {
    fn: 'workflows_with_open_rows',
    role: 'caller',
    shape: 'values',
    args: (i: { workflowIds: string[] }): Args => ({ p_workflow_ids: a('uuid[]', i.workflowIds) }),
    decode: (raw: unknown): string[] => rowsOf<string>(raw)
  },
  raiseScanFloors: {
    fn: 'raise_scan_floors',
    role: 'service',
    shape: 'value',
    serviceOnly: SCAN,
    args: (i: { workflowIds: string[], floor: string }): Args => ({ p_workflow_ids: a('uuid[]', i.workflowIds), p_floor: a('bigint', i.floor) }),
    decode: (raw: unknown): number => Number(raw ?? 0)
  },
  markWorkflowMissing: {
    fn: 'mark_user_workflow_missing',
    role: 'service',
    shape: 'value',
    args: (i: { workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date }, s: Scope): Args => ({
      p_user_id: a('uuid', actingFor(s)),
      p_workflow_id: a('uuid', i.workflowId),
      p_n8n_workflow_id: a('text', i.n8nWorkflowId),
      p_error: a('text', i.error),
      p_synced_at: ts(i.syncedAt)
    }),
    decode: isTrue
  },
  recordSyncLog: {
    fn: 'record_sync_log',
    role: 'service',
    shape: 'value',
    args: (log: SyncLogInput, s: Scope): Args => ({
      p_sync_type: a('text', log.sync_type),
      p_status: a('text', log.status),
      p_duration_ms: a('integer', Math.round(log.duration_ms)),
      p_workflows_synced: a('integer', log.workflows_synced),
      p_workflows_failed: a('integer', log.workflows_failed),
      p_executions_ingested: a('integer', log.executions_ingested),
      p_error: a('text', log.error),
      p_details: a('jsonb', log.details),
      // a user's sync logs for that user, whatever the input says
      p_user_id: a('uuid', s.kind === 'user' ? s.userId : (log.user_id ?? null))
    }),
    decode: required<string>('record_sync_log')
  },
  syncStats: {
    fn: 'sync_log_stats',
    role: 'caller',
    shape: 'rows',
    args: (i: { since: Date }): Args => ({ p_since: ts(i.since) }),
    decode: (raw: unknown): SyncStatsRow[] => rowsOf<SyncStatsRow>(raw)
  },
  executionStats: {
    fn: 'workflow_execution_stats',
    role: 'read',
    shape: 'rows',
    args: (q: ExecutionStatsQuery): Args => ({ p_bucket: a('text', q.bucket), p_since: ts(q.since), p_until: ts(q.until), p_workflow_id: a('uuid', q.workflowId) }),
    decode: (raw: unknown): ExecutionStatsRow[] => rowsOf<Record<string, unknown>>(raw).map(executionStatsRow)
  },

  // ---- cleanup (service scope) ----
  purgeExpiredData: {
    fn: 'purge_expired_data',
    role: 'caller',
    shape: 'value',
    args: (i: { syncLogDays: number, executionDays: number, dryRun: boolean }): Args => ({
      p_sync_log_days: a('integer', i.syncLogDays), p_execution_days: a('integer', i.executionDays), p_dry_run: a('boolean', i.dryRun)
    }),
    decode: required<PurgeCounts>('purge_expired_data')
  },
  ownedN8nWorkflows: {
    fn: 'owned_n8n_workflows',
    role: 'caller',
    shape: 'rows',
    args: (i: { n8nIds: string[], rowIds: string[] }): Args => ({ p_n8n_ids: a('text[]', i.n8nIds), p_row_ids: a('uuid[]', i.rowIds) }),
    decode: (raw: unknown): { n8nIds: Set<string>, rowIds: Set<string> } => {
      const owned = { n8nIds: new Set<string>(), rowIds: new Set<string>() }
      for (const r of rowsOf<{ n8n_workflow_id: string | null, row_id: string | null }>(raw)) {
        if (r.n8n_workflow_id) owned.n8nIds.add(r.n8n_workflow_id)
        if (r.row_id) owned.rowIds.add(r.row_id)
      }
      return owned
    }
  },
  purgeEventLog: {
    fn: 'purge_workflow_events',
    role: 'caller',
    shape: 'value',
    args: (i: { olderThanHours: number, dryRun: boolean }): Args => ({
      p_older_than: a('interval', `${Math.max(0, Math.trunc(i.olderThanHours))} hours`), p_dry_run: a('boolean', i.dryRun)
    }),
    decode: (raw: unknown): number => Number(raw ?? 0)
  },

  // ---- live tail (service scope) ----
  liveTailClaim: {
    fn: 'live_tail_claim',
    role: 'caller',
    shape: 'value',
    args: (i: { holder: string }): Args => ({ p_holder: a('text', i.holder) }),
    decode: required<LiveTailState>('live_tail_claim')
  },
  liveTailIngest: {
    fn: 'live_tail_ingest',
    role: 'caller',
    shape: 'value',
    args: (i: { epoch: string, write: LiveTailWrite, syncedAt: Date }): Args => ({
      p_epoch: a('bigint', i.epoch),
      p_items: a('jsonb', tailItems(i.write.items)),
      p_vanished: a('jsonb', i.write.vanished),
      p_synced_at: ts(i.syncedAt),
      p_state: a('jsonb', i.write.state),
      p_identities: a('jsonb', i.write.identities ?? {})
    }),
    decode: required<LiveTailWriteResult>('live_tail_ingest')
  },
  liveTailOpenExecutions: {
    fn: 'live_tail_open_executions',
    role: 'caller',
    shape: 'rows',
    args: (i: { limit: number }): Args => ({ p_limit: a('integer', i.limit) }),
    decode: (raw: unknown): OpenExecution[] => rowsOf<OpenExecution>(raw)
  },

  // ---- lease locks (the Supabase store's withLock; the Postgres store holds advisory locks) ----
  tryAcquireLock: {
    fn: 'try_acquire_lock',
    role: 'service',
    shape: 'value',
    args: leaseArgs,
    decode: isTrue
  },
  renewLock: {
    fn: 'renew_lock',
    role: 'service',
    shape: 'value',
    args: leaseArgs,
    decode: isTrue
  },
  releaseLock: {
    fn: 'release_lock',
    role: 'service',
    shape: 'value',
    args: (i: { key: string, holder: string }): Args => ({ p_key: a('text', i.key), p_holder: a('text', i.holder) }),
    decode: isTrue
  }
} as const satisfies Record<string, Operation<never, unknown>>

export type OperationName = keyof typeof OPERATIONS
export type InputOf<K extends OperationName> = Parameters<(typeof OPERATIONS)[K]['args']>[0]
export type ResultOf<K extends OperationName> = ReturnType<(typeof OPERATIONS)[K]['decode']>

/** The table's entries as plain Operations (for the runners and the contract test). */
export function operation<K extends OperationName> (name: K): Operation<InputOf<K>, ResultOf<K>> {
  return OPERATIONS[name] as unknown as Operation<InputOf<K>, ResultOf<K>>
}

export const OPERATION_NAMES = Object.keys(OPERATIONS) as OperationName[]
