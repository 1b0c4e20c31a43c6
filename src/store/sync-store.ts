// SQL of the sync engine. Every write goes through the SQL functions of
// supabase/migrations/20250109000000_sync_engine.sql, so supabase-js `rpc` callers get the same
// atomicity; each function here takes the caller's transaction (RLS applies as its role).
import type { Queryable } from '../db/database.ts'
import type { IngestOptions, ScanBatchOptions } from './ingest-options.ts'

export interface SyncTarget {
  id: string
  user_id: string
  name: string
  active: boolean
  status: string
  n8n_workflow_id: string | null
  /** Text, not number: n8n ids are compared as bigints. */
  execution_floor_id: string | null
}

/** Fields of an n8n execution item that the ledger keeps (the rest of the item is ignored). */
export interface ExecutionInput {
  id: string
  status: string
  mode?: string | null
  finished?: boolean
  startedAt?: string | null
  stoppedAt?: string | null
  workflowId?: string | null
}

export type { IngestOptions, ScanBatchOptions } from './ingest-options.ts'

export interface IngestResult {
  inserted: number
  updated: number
  ignored: number
  vanished: number
  delta: { execution_count: number, successful_executions: number, failed_executions: number }
  floor: string | null
  floor_advanced: boolean
  workflow_written: boolean
  /** Complete passes only: open rows at or below the stop point, to re-check by id. */
  recheck: string[]
}

/**
 * The workflows a sync looks at, with their effective stop point: the SQL function both stores
 * call (Supabase through rpc), read here in its keyset pages of 1,000.
 */
export async function listSyncTargets (tx: Queryable, filter: { workflowIds?: string[] | null } = {}): Promise<SyncTarget[]> {
  const ids = filter.workflowIds ?? null
  const all: SyncTarget[] = []
  let after: SyncTarget | undefined
  for (;;) {
    const res = await tx.query<SyncTarget>(
      'select * from public.list_sync_targets($1::uuid[], $2::uuid, $3::uuid, 1000)',
      [ids, after?.user_id ?? null, after?.id ?? null]
    )
    all.push(...res.rows)
    if (res.rows.length < 1000) return all
    after = res.rows[res.rows.length - 1]
  }
}

/**
 * The ledger writes run as the service (service_role) for user `userId` (null: the service's own
 * sync): ingest_user_executions checks, in the same transaction, that the workflow is that user's.
 */
export async function ingestExecutions (
  tx: Queryable,
  userId: string | null,
  workflowId: string,
  executions: ExecutionInput[],
  syncedAt: Date,
  options: IngestOptions = {}
): Promise<IngestResult> {
  const items = executions.map(executionItem)
  const res = await tx.query<{ r: IngestResult }>(
    'select public.ingest_user_executions($1::uuid, $2::uuid, $3::jsonb, $4::timestamptz, $5::jsonb) as r',
    [userId, workflowId, JSON.stringify(items), syncedAt.toISOString(), JSON.stringify(options)]
  )
  const r = res.rows[0]?.r
  if (!r) throw new Error('ingest_executions returned nothing')
  return r
}

/** The fields ingest_executions reads, and no more: pages stay small on the wire. */
export function executionItem (e: ExecutionInput): object {
  return {
    id: e.id,
    status: e.status,
    mode: e.mode ?? null,
    finished: e.finished ?? false,
    startedAt: e.startedAt ?? null,
    stoppedAt: e.stoppedAt ?? null,
    workflowId: e.workflowId ?? null
  }
}

export interface IngestJob {
  workflowId: string
  executions: ExecutionInput[]
  options?: IngestOptions
}

/**
 * Several ingest_executions calls in one transaction and one round trip (all or nothing; the
 * caller retries the jobs one by one on an error). Results in the order of `jobs`.
 */
export async function ingestExecutionsBatch (tx: Queryable, userId: string | null, jobs: IngestJob[], syncedAt: Date): Promise<IngestResult[]> {
  const payload = '[' + jobs.map((j) => `{"workflow_id":${JSON.stringify(j.workflowId)},"executions":${JSON.stringify(j.executions.map(executionItem))},"options":${JSON.stringify(j.options ?? {})}}`).join(',') + ']'
  const res = await tx.query<{ r: IngestResult[] }>(
    'select public.ingest_user_executions_batch($1::uuid, $2::jsonb, $3::timestamptz) as r',
    [userId, payload, syncedAt.toISOString()]
  )
  const r = res.rows[0]?.r
  if (!Array.isArray(r) || r.length !== jobs.length) throw new Error('ingest_executions_batch returned an unexpected answer')
  return r
}

/** One workflow's part of an instance-scan batch: its items as executionJson strings. */
export interface ScanJob {
  workflowId: string
  items: string[]
  /** This job ends the workflow's pass: its stop point moves (see ingest_scan_batch). */
  final: boolean
}

/** An execution as ingest_*'s JSON item, serialised once (the scan buffers these strings). */
export function executionJson (e: ExecutionInput): string {
  return JSON.stringify(executionItem(e))
}

/** ingest_scan_batch: the scan's writes for many workflows in one set-based call. Results in job order. */
export async function ingestScanBatch (tx: Queryable, jobs: ScanJob[], syncedAt: Date, options: ScanBatchOptions): Promise<IngestResult[]> {
  const payload = '[' + jobs.map((j) => `{"workflow_id":${JSON.stringify(j.workflowId)},"final":${j.final},"executions":[${j.items.join(',')}]}`).join(',') + ']'
  const res = await tx.query<{ r: IngestResult[] }>(
    'select public.ingest_scan_batch($1::jsonb, $2::timestamptz, $3::jsonb) as r',
    [payload, syncedAt.toISOString(), JSON.stringify(options)]
  )
  const r = res.rows[0]?.r
  if (!Array.isArray(r) || r.length !== jobs.length) throw new Error('ingest_scan_batch returned an unexpected answer')
  return r
}

/** Workflows (of these) with open ledger rows: waiting/new/running/unknown, not vanished. */
export async function workflowsWithOpenRows (tx: Queryable, workflowIds: string[]): Promise<string[]> {
  const res = await tx.query<{ workflow_id: string }>(
    'select public.workflows_with_open_rows($1::uuid[]) as workflow_id', [workflowIds])
  return res.rows.map((r) => r.workflow_id)
}

/** The instance scan's stop point for workflows that had nothing new (service only). */
export async function raiseScanFloors (tx: Queryable, workflowIds: string[], floor: string): Promise<number> {
  const res = await tx.query<{ n: number }>('select public.raise_scan_floors($1::uuid[], $2::bigint) as n', [workflowIds, floor])
  return res.rows[0]?.n ?? 0
}

export async function markWorkflowMissing (tx: Queryable, userId: string | null, workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date): Promise<boolean> {
  const res = await tx.query<{ changed: boolean }>(
    'select public.mark_user_workflow_missing($1::uuid, $2::uuid, $3, $4, $5::timestamptz) as changed',
    [userId, workflowId, n8nWorkflowId, error, syncedAt.toISOString()]
  )
  return res.rows[0]?.changed === true
}

export interface SyncLogInput {
  sync_type: string
  status: 'success' | 'partial' | 'failed'
  duration_ms: number
  workflows_synced: number
  workflows_failed: number
  executions_ingested: number
  error: string | null
  details: Record<string, unknown>
  /** Defaults to the caller (auth.uid()); NULL for the service role. */
  user_id?: string | null
}

export async function recordSyncLog (tx: Queryable, log: SyncLogInput): Promise<string> {
  const res = await tx.query<{ id: string }>(
    'select public.record_sync_log($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::uuid) as id',
    [log.sync_type, log.status, Math.round(log.duration_ms), log.workflows_synced, log.workflows_failed,
      log.executions_ingested, log.error, JSON.stringify(log.details), log.user_id ?? null]
  )
  const id = res.rows[0]?.id
  if (!id) throw new Error('record_sync_log returned nothing')
  return id
}

/** Whether the caller may see the workflow (RLS decides for users). */
export async function workflowVisible (tx: Queryable, workflowId: string): Promise<boolean> {
  const res = await tx.query('select 1 from public.mvp_workflows where id = $1', [workflowId])
  return res.rows.length > 0
}

export interface ExecutionRow {
  id: number
  workflow_id: string
  n8n_execution_id: string
  status: string
  mode: string | null
  finished: boolean
  started_at: string | null
  stopped_at: string | null
  created_at: string
  updated_at: string
  /** Keyset position (n8n id as text); not part of the answer. */
  seq: string
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

export interface SyncLogRow {
  id: string
  user_id: string | null
  sync_type: string
  status: string
  duration_ms: number
  workflows_synced: number
  workflows_failed: number
  executions_ingested: number
  error: string | null
  details: Record<string, unknown>
  created_at: string
  /** Exact keyset position (microseconds survive as text); not part of the answer. */
  created_key: string
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

export interface SyncStatsRow {
  sync_type: string
  status: string
  count: number
  avg_duration_ms: number
}

export async function syncStatsSince (tx: Queryable, since: Date): Promise<SyncStatsRow[]> {
  const res = await tx.query<SyncStatsRow>(
    `select sync_type, status, count(*)::int as count, round(avg(duration_ms))::int as avg_duration_ms
       from public.sync_logs
      where created_at >= $1::timestamptz
      group by sync_type, status
      order by sync_type, status`,
    [since.toISOString()]
  )
  return res.rows
}
