import type { Queryable } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'

// The Postgres store's SQL for workflows. Every function runs inside the caller's scope (RLS
// transaction for a user, service transaction for cron work); user queries also filter by user id.
// Writes that must be atomic are SQL functions (see the bottom of this file), shared with the
// Supabase store.

export const WORKFLOW_COLUMNS = `id, user_id, name, description, active, status, n8n_workflow_id, nodes, connections,
  settings, execution_count, successful_executions, failed_executions, last_execution_at,
  last_execution_status, last_sync_at, last_error, version, created_at, updated_at`

// GET /workflows without include=definition: everything but the definition (nodes, connections,
// settings are most of a row's bytes; a dashboard polling the list does not need them).
export const SUMMARY_COLUMNS = `id, user_id, name, description, active, status, n8n_workflow_id,
  execution_count, successful_executions, failed_executions, last_execution_at,
  last_execution_status, last_sync_at, last_error, version, created_at, updated_at`

export interface WorkflowRow extends Workflow {
  deploy_attempts: number
}

export type DefinitionField = 'nodes' | 'connections' | 'settings'

const SELECT = `select ${WORKFLOW_COLUMNS}, deploy_attempts from public.mvp_workflows`

export interface ListFilter {
  userId: string
  limit: number
  after?: { createdAt: string, id: string }
  status?: string
  active?: boolean
  /** false: summaries, without nodes, connections and settings. Default true. */
  definition?: boolean
}

export type ListedWorkflowRow = Omit<WorkflowRow, DefinitionField> & Partial<Pick<WorkflowRow, DefinitionField>> & {
  /** created_at with microseconds, UTC ISO 8601: the keyset cursor (milliseconds would skip rows). */
  cursor_ts: string
  /** The row version (Postgres xmin) where the store has one: GET /workflows' ETag. */
  row_version?: string
}

function listWhere (f: ListFilter): { where: string, params: unknown[] } {
  const params: unknown[] = [f.userId]
  let where = 'user_id = $1'
  if (f.after) {
    params.push(f.after.createdAt, f.after.id)
    where += ` and (created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`
  }
  if (f.status) {
    params.push(f.status)
    where += ` and status = $${params.length}`
  }
  if (f.active !== undefined) {
    params.push(f.active)
    where += ` and active = $${params.length}`
  }
  params.push(f.limit)
  return { where, params }
}

// row_version (xmin: the transaction that wrote this version of the row) changes with every
// insert and update, so the page's ids and row versions are a validator for GET /workflows that
// listWorkflowTag reads without the rows themselves (src/routes/workflows/conditional.ts).
export async function listWorkflows (tx: Queryable, f: ListFilter): Promise<ListedWorkflowRow[]> {
  const { where, params } = listWhere(f)
  const res = await tx.query<ListedWorkflowRow>(
    `select ${f.definition === false ? SUMMARY_COLUMNS : WORKFLOW_COLUMNS}, deploy_attempts, xmin::text as row_version,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_ts
     from public.mvp_workflows where ${where} order by created_at desc, id desc limit $${params.length}`, params)
  return res.rows
}

/** The same page as listWorkflows, as `id:row_version,...` in page order (see listPageTag). */
export async function listWorkflowTag (tx: Queryable, f: ListFilter): Promise<string> {
  const { where, params } = listWhere(f)
  const res = await tx.query<{ tag: string }>(
    `select coalesce(string_agg(id::text || ':' || v, ',' order by created_at desc, id desc), '') as tag
     from (select id, created_at, xmin::text as v from public.mvp_workflows where ${where}
           order by created_at desc, id desc limit $${params.length}) page`, params)
  return res.rows[0]?.tag ?? ''
}

export async function getWorkflow (tx: Queryable, userId: string | null, id: string, forUpdate = false): Promise<WorkflowRow | undefined> {
  const lock = forUpdate ? ' for update' : ''
  const res = userId === null
    ? await tx.query<WorkflowRow>(`${SELECT} where id = $1${lock}`, [id])
    : await tx.query<WorkflowRow>(`${SELECT} where id = $1 and user_id = $2${lock}`, [id, userId])
  return res.rows[0]
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

export async function deleteWorkflow (tx: Queryable, userId: string, id: string): Promise<boolean> {
  const res = await tx.query('delete from public.mvp_workflows where id = $1 and user_id = $2', [id, userId])
  return res.rowCount > 0
}

// Idempotency keys -----------------------------------------------------------------------------

export interface IdempotencyRecord {
  request_hash: string
  status_code: number | null
  response: unknown
  workflow_id: string | null
  expired: boolean
}

export async function getIdempotencyKey (tx: Queryable, userId: string, key: string): Promise<IdempotencyRecord | undefined> {
  const res = await tx.query<IdempotencyRecord>(
    `select request_hash, status_code, response, workflow_id, expires_at <= now() as expired
     from public.idempotency_keys where user_id = $1 and key = $2`, [userId, key])
  return res.rows[0]
}

// Atomic writes: the SQL functions of supabase/migrations/20250112000000_store_functions.sql (as
// redefined by 20250113000000_trust_model.sql), called here with a plain select (the Supabase
// store calls the same ones with rpc). Named arguments, as PostgREST passes them. They are the
// service's writes: executable by service_role only, run in a service transaction, and given the
// user they act for as p_user_id (null: the service's own work, any row).

async function callJson (tx: Queryable, fn: string, args: Record<string, { value: unknown, cast: string }>): Promise<Record<string, unknown> | null> {
  const names = Object.keys(args)
  const list = names.map((n, i) => `${n} => $${i + 1}::${args[n]!.cast}`).join(', ')
  const res = await tx.query<{ r: Record<string, unknown> | null }>(`select public.${fn}(${list}) as r`, names.map((n) => args[n]!.value))
  return res.rows[0]?.r ?? null
}

const json = (v: unknown): { value: string, cast: string } => ({ value: JSON.stringify(v), cast: 'jsonb' })

export interface CreateWorkflowArgs {
  userId: string
  name: string
  description: string | null
  nodes: unknown[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  idempotencyKey?: string | undefined
  requestHash?: string | undefined
  ttlHours?: number | undefined
}

/** The jsonb answer of create_workflow ({outcome, workflow} or {outcome: 'replay', status_code, response}). */
export async function createWorkflow (tx: Queryable, a: CreateWorkflowArgs): Promise<Record<string, unknown>> {
  const args: Record<string, { value: unknown, cast: string }> = {
    p_user_id: { value: a.userId, cast: 'uuid' },
    p_name: { value: a.name, cast: 'text' },
    p_description: { value: a.description, cast: 'text' },
    p_nodes: json(a.nodes),
    p_connections: json(a.connections),
    p_settings: json(a.settings)
  }
  if (a.idempotencyKey !== undefined) {
    args.p_idempotency_key = { value: a.idempotencyKey, cast: 'text' }
    args.p_request_hash = { value: a.requestHash ?? null, cast: 'text' }
    args.p_ttl_hours = { value: a.ttlHours ?? 24, cast: 'integer' }
  }
  const r = await callJson(tx, 'create_workflow', args)
  if (!r) throw new Error('create_workflow returned nothing')
  return r
}

export function completeIdempotencyKey (tx: Queryable, userId: string, key: string, statusCode: number, response: unknown): Promise<unknown> {
  return callJson(tx, 'complete_idempotency_key', {
    p_user_id: { value: userId, cast: 'uuid' },
    p_idempotency_key: { value: key, cast: 'text' },
    p_status_code: { value: statusCode, cast: 'integer' },
    p_response: json(response)
  })
}

export function beginDeploy (tx: Queryable, userId: string | null, id: string): Promise<Record<string, unknown> | null> {
  return callJson(tx, 'begin_deploy', { p_workflow_id: { value: id, cast: 'uuid' }, p_user_id: { value: userId, cast: 'uuid' } })
}

/** record_deploy_outcome's p_outcome: keys present only for the columns to set. */
export function deployOutcomeJson (o: DeployOutcome): Record<string, unknown> {
  const out: Record<string, unknown> = { status: o.status, last_error: o.lastError }
  if (o.n8nWorkflowId !== undefined) out.n8n_workflow_id = o.n8nWorkflowId
  if (o.active !== undefined) out.active = o.active
  return out
}

export function recordDeployOutcome (tx: Queryable, userId: string | null, id: string, o: DeployOutcome): Promise<Record<string, unknown> | null> {
  return callJson(tx, 'record_deploy_outcome', { p_workflow_id: { value: id, cast: 'uuid' }, p_outcome: json(deployOutcomeJson(o)), p_user_id: { value: userId, cast: 'uuid' } })
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

export function updateWorkflowDefinition (tx: Queryable, userId: string, id: string, c: WorkflowChanges, expectedVersion?: number): Promise<Record<string, unknown> | null> {
  return callJson(tx, 'update_workflow_definition', {
    p_workflow_id: { value: id, cast: 'uuid' },
    p_user_id: { value: userId, cast: 'uuid' },
    p_changes: json(workflowChangesJson(c)),
    p_expected_version: { value: expectedVersion ?? null, cast: 'integer' }
  })
}

export function setWorkflowActive (tx: Queryable, userId: string, id: string, active: boolean): Promise<Record<string, unknown> | null> {
  return callJson(tx, 'set_workflow_active', { p_workflow_id: { value: id, cast: 'uuid' }, p_active: { value: active, cast: 'boolean' }, p_user_id: { value: userId, cast: 'uuid' } })
}
