import type { Queryable } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'

// The only SQL for workflows. Every function runs inside the caller's scope (RLS transaction for
// a user, service transaction for cron work); user queries also filter by user id.

export const WORKFLOW_COLUMNS = `id, user_id, name, description, active, status, n8n_workflow_id, nodes, connections,
  settings, execution_count, successful_executions, failed_executions, last_execution_at,
  last_execution_status, last_sync_at, last_error, version, created_at, updated_at`

export interface WorkflowRow extends Workflow {
  deploy_attempts: number
}

const SELECT = `select ${WORKFLOW_COLUMNS}, deploy_attempts from public.mvp_workflows`

export interface ListFilter {
  userId: string
  limit: number
  after?: { createdAt: string, id: string }
  status?: string
  active?: boolean
}

export interface ListedWorkflowRow extends WorkflowRow {
  /** created_at with microseconds, UTC ISO 8601: the keyset cursor (milliseconds would skip rows). */
  cursor_ts: string
}

export async function listWorkflows (tx: Queryable, f: ListFilter): Promise<ListedWorkflowRow[]> {
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
  const res = await tx.query<ListedWorkflowRow>(
    `select ${WORKFLOW_COLUMNS}, deploy_attempts,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_ts
     from public.mvp_workflows where ${where} order by created_at desc, id desc limit $${params.length}`, params)
  return res.rows
}

export async function getWorkflow (tx: Queryable, userId: string | null, id: string, forUpdate = false): Promise<WorkflowRow | undefined> {
  const lock = forUpdate ? ' for update' : ''
  const res = userId === null
    ? await tx.query<WorkflowRow>(`${SELECT} where id = $1${lock}`, [id])
    : await tx.query<WorkflowRow>(`${SELECT} where id = $1 and user_id = $2${lock}`, [id, userId])
  return res.rows[0]
}

export interface NewWorkflow {
  userId: string
  name: string
  description: string | null
  nodes: unknown[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  active: boolean
}

export async function insertWorkflow (tx: Queryable, w: NewWorkflow): Promise<WorkflowRow> {
  const res = await tx.query<WorkflowRow>(
    `insert into public.mvp_workflows (user_id, name, description, nodes, connections, settings, active, status)
     values ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, 'pending')
     returning ${WORKFLOW_COLUMNS}, deploy_attempts`,
    [w.userId, w.name, w.description, JSON.stringify(w.nodes), JSON.stringify(w.connections), JSON.stringify(w.settings), w.active]
  )
  return res.rows[0] as WorkflowRow
}

export interface WorkflowChanges {
  name?: string
  description?: string | null
  nodes?: unknown[]
  connections?: Record<string, unknown>
  settings?: Record<string, unknown>
}

/** A user's change: bumps the version; with expectedVersion, changes nothing on a mismatch. */
export async function updateWorkflowDefinition (tx: Queryable, userId: string, id: string, c: WorkflowChanges, expectedVersion?: number): Promise<WorkflowRow | undefined> {
  const sets: string[] = []
  const params: unknown[] = [id, userId]
  const add = (col: string, value: unknown, cast = '') => {
    params.push(value)
    sets.push(`${col} = $${params.length}${cast}`)
  }
  if (c.name !== undefined) add('name', c.name)
  if (c.description !== undefined) add('description', c.description)
  if (c.nodes !== undefined) add('nodes', JSON.stringify(c.nodes), '::jsonb')
  if (c.connections !== undefined) add('connections', JSON.stringify(c.connections), '::jsonb')
  if (c.settings !== undefined) add('settings', JSON.stringify(c.settings), '::jsonb')
  let where = 'id = $1 and user_id = $2'
  if (expectedVersion !== undefined) {
    params.push(expectedVersion)
    where += ` and version = $${params.length}`
  }
  const res = await tx.query<WorkflowRow>(
    `update public.mvp_workflows set ${sets.join(', ')}, version = version + 1 where ${where}
     returning ${WORKFLOW_COLUMNS}, deploy_attempts`, params)
  return res.rows[0]
}

export async function countDeployAttempt (tx: Queryable, id: string): Promise<void> {
  await tx.query('update public.mvp_workflows set deploy_attempts = deploy_attempts + 1 where id = $1', [id])
}

export interface DeployOutcome {
  status: 'pending' | 'deployed' | 'error' | 'missing_in_n8n'
  n8nWorkflowId?: string | null
  lastError: string | null
  active?: boolean
}

export async function recordDeployOutcome (tx: Queryable, id: string, o: DeployOutcome): Promise<WorkflowRow | undefined> {
  const params: unknown[] = [id, o.status, o.lastError]
  let extra = ''
  if (o.n8nWorkflowId !== undefined) {
    params.push(o.n8nWorkflowId)
    extra += `, n8n_workflow_id = $${params.length}`
  }
  if (o.active !== undefined) {
    params.push(o.active)
    extra += `, active = $${params.length}`
  }
  const res = await tx.query<WorkflowRow>(
    `update public.mvp_workflows set status = $2, last_error = $3${extra} where id = $1
     returning ${WORKFLOW_COLUMNS}, deploy_attempts`, params)
  return res.rows[0]
}

export async function setActive (tx: Queryable, userId: string, id: string, active: boolean): Promise<WorkflowRow | undefined> {
  const res = await tx.query<WorkflowRow>(
    `update public.mvp_workflows set active = $3, version = version + 1 where id = $1 and user_id = $2
     returning ${WORKFLOW_COLUMNS}, deploy_attempts`, [id, userId, active])
  return res.rows[0]
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

/** Claims the key for this request; answers the existing record when the key is already taken. */
export async function claimIdempotencyKey (tx: Queryable, userId: string, key: string, requestHash: string, ttlHours: number): Promise<IdempotencyRecord | undefined> {
  // An expired key is free again.
  await tx.query('delete from public.idempotency_keys where user_id = $1 and key = $2 and expires_at <= now()', [userId, key])
  const inserted = await tx.query(
    `insert into public.idempotency_keys (user_id, key, request_hash, expires_at)
     values ($1, $2, $3, now() + make_interval(hours => $4)) on conflict (user_id, key) do nothing returning key`,
    [userId, key, requestHash, ttlHours])
  if (inserted.rowCount > 0) return undefined
  const res = await tx.query<IdempotencyRecord>(
    `select request_hash, status_code, response, workflow_id, expires_at <= now() as expired
     from public.idempotency_keys where user_id = $1 and key = $2 for update`, [userId, key])
  return res.rows[0]
}

export async function getIdempotencyKey (tx: Queryable, userId: string, key: string): Promise<IdempotencyRecord | undefined> {
  const res = await tx.query<IdempotencyRecord>(
    `select request_hash, status_code, response, workflow_id, expires_at <= now() as expired
     from public.idempotency_keys where user_id = $1 and key = $2`, [userId, key])
  return res.rows[0]
}

export async function linkIdempotencyKey (tx: Queryable, userId: string, key: string, workflowId: string): Promise<void> {
  await tx.query('update public.idempotency_keys set workflow_id = $3 where user_id = $1 and key = $2', [userId, key, workflowId])
}

export async function completeIdempotencyKey (tx: Queryable, userId: string, key: string, statusCode: number, response: unknown): Promise<void> {
  await tx.query('update public.idempotency_keys set status_code = $3, response = $4::jsonb where user_id = $1 and key = $2',
    [userId, key, statusCode, JSON.stringify(response)])
}
