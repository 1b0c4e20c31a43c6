// The rows the Store answers, and their JSON decoders: the one shape both stores give (no SQL here).
//
// Rows that arrive as JSON (from the SQL functions' jsonb answers, or from PostgREST) are decoded
// into the exact shape the pg driver gives the Postgres store: timestamps as UTC ISO 8601 strings
// with Postgres's microseconds ("2025-01-08T10:00:00.123456Z"), counts as numbers, nothing but the
// known columns.
import { microseconds } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import type { CreateOutcome } from './store.ts'

/** The contract's columns of a workflow row (the Workflow schema), in answer order. */
export const WORKFLOW_FIELDS = ['id', 'user_id', 'name', 'description', 'active', 'status', 'n8n_workflow_id', 'nodes', 'connections',
  'settings', 'execution_count', 'successful_executions', 'failed_executions', 'last_execution_at',
  'last_execution_status', 'last_sync_at', 'last_error', 'version', 'created_at', 'updated_at'] as const

/** The definition's columns: most of a row's bytes; GET /workflows without include=definition leaves them out. */
export const DEFINITION_FIELDS: readonly DefinitionField[] = ['nodes', 'connections', 'settings']

/** A workflow row without its definition. */
export const SUMMARY_FIELDS = WORKFLOW_FIELDS.filter((f) => !(DEFINITION_FIELDS as readonly string[]).includes(f))

export interface WorkflowRow extends Workflow {
  deploy_attempts: number
}

export type DefinitionField = 'nodes' | 'connections' | 'settings'

export type ListedWorkflowRow = Omit<WorkflowRow, DefinitionField> & Partial<Pick<WorkflowRow, DefinitionField>> & {
  /** created_at with microseconds, UTC ISO 8601: the keyset cursor (milliseconds would skip rows). */
  cursor_ts: string
  /** The row version (Postgres xmin) where the store has one: GET /workflows' ETag. */
  row_version?: string
}

export interface WorkflowChanges {
  name?: string
  description?: string | null
  nodes?: unknown[]
  connections?: Record<string, unknown>
  settings?: Record<string, unknown>
}

export interface DeployOutcome {
  status: 'pending' | 'deployed' | 'error' | 'missing_in_n8n'
  n8nWorkflowId?: string | null
  lastError: string | null
  active?: boolean
}

export interface IdempotencyRecord {
  request_hash: string
  status_code: number | null
  response: unknown
  workflow_id: string | null
  expired: boolean
}

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

// Declared once, as the SQL reads them (test/db/ingest-options.test.ts holds the two together).
import type { IngestOptions } from './ingest-options.ts'
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

export interface IngestJob {
  workflowId: string
  executions: ExecutionInput[]
  options?: IngestOptions
}

/** One workflow's part of an instance-scan batch: its items as executionJson strings. */
export interface ScanJob {
  workflowId: string
  items: string[]
  /** This job ends the workflow's pass: its stop point moves (see ingest_scan_batch). */
  final: boolean
}

/** What a sync log row records of a sync (or a cleanup). */
export interface SyncLogFigures {
  duration_ms: number
  workflows_synced: number
  workflows_failed: number
  executions_ingested: number
  error: string | null
  details: Record<string, unknown>
}

export interface SyncLogInput extends SyncLogFigures {
  sync_type: string
  status: 'success' | 'partial' | 'failed'
  /** Defaults to the caller (auth.uid()); NULL for the service role. */
  user_id?: string | null
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

export interface SyncLogRow extends SyncLogFigures {
  id: string
  user_id: string | null
  sync_type: string
  status: string
  created_at: string
  /** Exact keyset position (microseconds survive as text); not part of the answer. */
  created_key: string
}

export interface SyncStatsRow {
  sync_type: string
  status: string
  count: number
  avg_duration_ms: number
}

export interface PurgeCounts {
  sync_logs: number
  executions: number
  idempotency_keys: number
  sync_log_cutoff: string
  execution_cutoff: string
}

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

export type EventOp = 'INSERT' | 'UPDATE' | 'DELETE'

export interface EventLogRow {
  id: number
  op: EventOp
  workflow_id: string
}

export interface EventLogPosition {
  /** The user's newest event id (0 when none is kept). */
  head: number
  /** The highest id the retention purge removed: a replay must start at or above it. */
  horizon: number
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)$/

/**
 * A timestamptz rendered by Postgres as text or JSON ("2025-01-08 10:00:00.5+00",
 * "2025-01-08T12:00:00.123456+02:00") as UTC ISO 8601, keeping every fractional digit (a
 * millisecond Date would lose the microseconds keyset cursors rely on).
 */
export function utcTimestamp (v: string): string {
  const m = TIMESTAMP.exec(v)
  if (!m) return new Date(v).toISOString()
  const [, date, time, fraction = '', zone = 'Z'] = m
  let offset = zone
  if (offset !== 'Z') {
    const [, sign, hh, mm = '00'] = /^([+-])(\d{2}):?(\d{2})?/.exec(offset) ?? []
    offset = `${sign}${hh}:${mm}`
  }
  if (offset === 'Z' || offset === '+00:00' || offset === '-00:00') return `${date}T${time}${fraction}Z`
  const whole = new Date(`${date}T${time}${offset}`)
  if (Number.isNaN(whole.getTime())) return new Date(v).toISOString()
  return `${whole.toISOString().slice(0, 19)}${fraction}Z`
}

function ts (v: unknown): string | null {
  return typeof v === 'string' ? microseconds(utcTimestamp(v)) : null
}

function num (v: unknown): number {
  return typeof v === 'number' ? v : Number(v ?? 0)
}

/** A workflow row (the contract's columns + deploy_attempts) from JSON. */
export function workflowRowFromJson (o: Record<string, unknown>): WorkflowRow {
  return {
    id: String(o.id),
    user_id: String(o.user_id),
    name: String(o.name),
    description: (o.description ?? null) as string | null,
    active: o.active === true,
    status: o.status as WorkflowRow['status'],
    n8n_workflow_id: (o.n8n_workflow_id ?? null) as string | null,
    nodes: (o.nodes ?? []) as WorkflowRow['nodes'],
    connections: (o.connections ?? {}) as WorkflowRow['connections'],
    settings: (o.settings ?? {}) as WorkflowRow['settings'],
    execution_count: num(o.execution_count),
    successful_executions: num(o.successful_executions),
    failed_executions: num(o.failed_executions),
    last_execution_at: ts(o.last_execution_at),
    last_execution_status: (o.last_execution_status ?? null) as string | null,
    last_sync_at: ts(o.last_sync_at),
    last_error: (o.last_error ?? null) as string | null,
    version: num(o.version),
    created_at: ts(o.created_at) as string,
    updated_at: ts(o.updated_at) as string,
    deploy_attempts: num(o.deploy_attempts)
  }
}

/** Converts the named timestamp fields of a JSON row in place and answers it. */
export function withUtcTimestamps<T extends Record<string, unknown>> (row: T, fields: readonly string[]): T {
  const r = row as Record<string, unknown>
  for (const f of fields) {
    if (typeof r[f] === 'string') r[f] = microseconds(utcTimestamp(r[f]))
  }
  return row
}

/** create_workflow's jsonb answer (both stores). */
export function createOutcomeFromJson (r: Record<string, unknown>): CreateOutcome {
  if (r.outcome === 'replay') {
    return { outcome: 'replay', statusCode: Number(r.status_code), response: r.response as Workflow }
  }
  if ((r.outcome === 'created' || r.outcome === 'resumed') && r.workflow && typeof r.workflow === 'object') {
    return { outcome: r.outcome, workflow: workflowRowFromJson(r.workflow as Record<string, unknown>) }
  }
  throw new Error('create_workflow answered an unexpected shape')
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

// ---- the ledger's JSON items (pure encoders: both stores and the instance scan use them) -----

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

/** An execution as ingest_*'s JSON item, serialised once (the scan buffers these strings). */
export function executionJson (e: ExecutionInput): string {
  return JSON.stringify(executionItem(e))
}
