// SQL of the live tail: its claim (fencing token), its fenced write and the open ledger rows it
// re-checks (supabase/migrations/20250116000000_live_tail.sql). Service scope only.
import type { Queryable } from '../db/database.ts'
import type { ExecutionInput } from './sync-store.ts'
import { executionItem } from './sync-store.ts'

/** The tail's persisted state. */
export interface LiveTailState {
  /** Fencing token of the current leader (decimal text). */
  epoch: string
  /** Every execution with an id at or below it is final in the ledger, gone, or an open row. */
  frontier: string | null
  backfilled: boolean
  cleanup_at: string | null
}

export interface LiveTailWrite {
  /** Execution items with their n8n workflowId (rows are found by it). */
  items: ExecutionInput[]
  /** Open executions n8n answered 404 for. */
  vanished: Array<{ workflowId: string, id: string }>
  state: { frontier?: string, backfilled?: boolean, cleanup_at?: string }
  /** n8n workflow id → what n8n's copy carries (name, staticData marker): the ownership check. */
  identities?: Record<string, TailIdentity>
}

export interface TailIdentity { name: string, row_id: string | null, user_id: string | null }

export interface LiveTailWriteResult {
  inserted: number
  updated: number
  /** Items of n8n workflows no row owns. */
  ignored: number
  workflows_written: number
  /** The n8n workflow ids among the items (and vanished) that a row owns. */
  owned: string[]
  frontier: string | null
  backfilled: boolean
  cleanup_at: string | null
}

export interface OpenExecution {
  n8n_execution_id: string
  n8n_workflow_id: string
  status: string
}

/** The JSON items live_tail_ingest takes (ingest_executions' fields plus workflowId). */
export function tailItems (items: ExecutionInput[]): object[] {
  return items.map((e) => ({ ...executionItem(e), workflowId: e.workflowId }))
}

export async function liveTailClaim (tx: Queryable, holder: string): Promise<LiveTailState> {
  const res = await tx.query<{ r: LiveTailState }>('select public.live_tail_claim($1::text) as r', [holder])
  const r = res.rows[0]?.r
  if (!r) throw new Error('live_tail_claim returned nothing')
  return r
}

export async function liveTailIngest (tx: Queryable, epoch: string, write: LiveTailWrite, syncedAt: Date): Promise<LiveTailWriteResult> {
  const res = await tx.query<{ r: LiveTailWriteResult }>(
    'select public.live_tail_ingest($1::bigint, $2::jsonb, $3::jsonb, $4::timestamptz, $5::jsonb, $6::jsonb) as r',
    [epoch, JSON.stringify(tailItems(write.items)), JSON.stringify(write.vanished), syncedAt.toISOString(), JSON.stringify(write.state), JSON.stringify(write.identities ?? {})])
  const r = res.rows[0]?.r
  if (!r) throw new Error('live_tail_ingest returned nothing')
  return r
}

export async function liveTailOpenExecutions (tx: Queryable, limit: number): Promise<OpenExecution[]> {
  const res = await tx.query<OpenExecution>(
    'select n8n_execution_id, n8n_workflow_id, status from public.live_tail_open_executions($1::integer)', [limit])
  return res.rows
}
