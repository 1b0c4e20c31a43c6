import type { Queryable } from '../db/database.ts'

export interface PurgeCounts {
  sync_logs: number
  executions: number
  idempotency_keys: number
  sync_log_cutoff: string
  execution_cutoff: string
}

export async function purgeExpiredData (tx: Queryable, syncLogDays: number, executionDays: number, dryRun: boolean): Promise<PurgeCounts> {
  const res = await tx.query<{ r: PurgeCounts }>('select public.purge_expired_data($1, $2, $3) as r', [syncLogDays, executionDays, dryRun])
  return res.rows[0]!.r
}

/** The n8n ids and marker row ids (of the given ones) that a workflow row owns. */
export async function ownedN8nWorkflows (tx: Queryable, n8nIds: string[], rowIds: string[]): Promise<{ n8nIds: Set<string>, rowIds: Set<string> }> {
  const res = await tx.query<{ n8n_workflow_id: string | null, row_id: string | null }>(
    'select n8n_workflow_id, row_id from public.owned_n8n_workflows($1::text[], $2::uuid[])', [n8nIds, rowIds])
  const owned = { n8nIds: new Set<string>(), rowIds: new Set<string>() }
  for (const r of res.rows) {
    if (r.n8n_workflow_id) owned.n8nIds.add(r.n8n_workflow_id)
    if (r.row_id) owned.rowIds.add(r.row_id)
  }
  return owned
}
