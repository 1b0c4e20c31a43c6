// The Postgres store's table reads for the sync's history (its writes are SQL functions, in the
// operation table: operations.ts). Each function takes the caller's transaction (RLS applies).
import type { Queryable } from '../db/database.ts'
import type { ExecutionRow, SyncLogRow } from './rows.ts'

// Row types live in rows.ts, the encoders in operations.ts; re-exported for older importers.
export type {
  ExecutionInput, ExecutionRow, IngestJob, IngestOptions, IngestResult, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget
} from './rows.ts'
export { executionItem, executionJson } from './rows.ts'

/** Whether the caller may see the workflow (RLS decides for users). */
export async function workflowVisible (tx: Queryable, workflowId: string): Promise<boolean> {
  const res = await tx.query('select 1 from public.mvp_workflows where id = $1', [workflowId])
  return res.rows.length > 0
}

export async function listExecutionRows (
  tx: Queryable,
  workflowId: string,
  q: { limit: number, beforeSeq: string | null, status: string | null }
): Promise<ExecutionRow[]> {
  const res = await tx.query<ExecutionRow>(
    `select id, workflow_id, n8n_execution_id, status, mode, finished, started_at, stopped_at,
            created_at, updated_at, n8n_execution_seq::text as seq
       from public.workflow_executions
      where workflow_id = $1
        and ($2::bigint is null or n8n_execution_seq < $2::bigint)
        and ($3::text is null or status = $3)
      order by n8n_execution_seq desc nulls last
      limit $4`,
    [workflowId, q.beforeSeq, q.status, q.limit]
  )
  return res.rows
}

export async function listSyncLogs (
  tx: Queryable,
  q: { limit: number, before: { created: string, id: string } | null }
): Promise<SyncLogRow[]> {
  const res = await tx.query<SyncLogRow>(
    `select id, user_id, sync_type, status, duration_ms, workflows_synced, workflows_failed,
            executions_ingested, error, details, created_at, created_at::text as created_key
       from public.sync_logs
      where ($1::timestamptz is null or (created_at, id) < ($1::timestamptz, $2::uuid))
      order by created_at desc, id desc
      limit $3`,
    [q.before?.created ?? null, q.before?.id ?? null, q.limit]
  )
  return res.rows
}
