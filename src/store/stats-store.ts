import type { Queryable } from '../db/database.ts'

// The Postgres store's read of the execution analytics: workflow_execution_stats of
// supabase/migrations/20250117000000_execution_stats.sql (the Supabase store calls it with rpc).

export type StatsBucket = 'hour' | 'day'

export interface ExecutionStatsQuery {
  bucket: StatsBucket
  /** Inclusive, aligned to a bucket start. */
  since: Date
  /** Exclusive. */
  until: Date
  /** null: all of the caller's workflows. */
  workflowId: string | null
}

/** One bucket (bucket_start null: the whole window) as the SQL function answers it. */
export interface ExecutionStatsRow {
  /** ISO 8601 UTC; null on the window's row. */
  bucket_start: string | null
  counts: Record<string, number>
  duration_count: number
  avg_duration_ms: number | null
  p50_bin: number | null
  p95_bin: number | null
}

/** Both stores' answers in one shape (pg gives bigint as text, PostgREST gives +00:00 offsets). */
export function executionStatsRow (r: Record<string, unknown>): ExecutionStatsRow {
  const counts: Record<string, number> = {}
  for (const [k, v] of Object.entries((r.counts ?? {}) as Record<string, unknown>)) counts[k] = Number(v)
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v))
  return {
    bucket_start: r.bucket_start === null || r.bucket_start === undefined ? null : new Date(String(r.bucket_start)).toISOString(),
    counts,
    duration_count: Number(r.duration_count ?? 0),
    avg_duration_ms: num(r.avg_duration_ms),
    p50_bin: num(r.p50_bin),
    p95_bin: num(r.p95_bin)
  }
}

export function statsArgs (q: ExecutionStatsQuery): Record<string, unknown> {
  return { p_bucket: q.bucket, p_since: q.since.toISOString(), p_until: q.until.toISOString(), p_workflow_id: q.workflowId }
}

export async function executionStats (tx: Queryable, q: ExecutionStatsQuery): Promise<ExecutionStatsRow[]> {
  const res = await tx.query<Record<string, unknown>>(
    `select bucket_start, counts, duration_count, avg_duration_ms, p50_bin, p95_bin
       from public.workflow_execution_stats(p_bucket => $1::text, p_since => $2::timestamptz, p_until => $3::timestamptz, p_workflow_id => $4::uuid)`,
    [q.bucket, q.since.toISOString(), q.until.toISOString(), q.workflowId])
  return res.rows.map(executionStatsRow)
}
