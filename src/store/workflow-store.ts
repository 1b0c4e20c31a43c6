// The Postgres store's table reads of workflows and idempotency keys (the writes are SQL functions:
// operations.ts). Every function runs inside the caller's scope (RLS transaction or one-round-trip
// read for a user, service transaction for cron work); user queries also filter by user id.
import type { Queryable } from '../db/database.ts'
import { SUMMARY_FIELDS, WORKFLOW_FIELDS } from './rows.ts'
import type { IdempotencyRecord, ListedWorkflowRow, WorkflowRow } from './rows.ts'

// Row types live in rows.ts; re-exported for older importers.
export type { DefinitionField, DeployOutcome, IdempotencyRecord, ListedWorkflowRow, WorkflowChanges, WorkflowRow } from './rows.ts'

export const WORKFLOW_COLUMNS = WORKFLOW_FIELDS.join(', ')

// GET /workflows without include=definition: everything but the definition (nodes, connections,
// settings are most of a row's bytes; a dashboard polling the list does not need them).
export const SUMMARY_COLUMNS = SUMMARY_FIELDS.join(', ')

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
// insert and update, so the page's ids and row versions are a validator for GET /workflows (its
// ETag: src/routes/workflows/conditional.ts).
export async function listWorkflows (tx: Queryable, f: ListFilter): Promise<ListedWorkflowRow[]> {
  const { where, params } = listWhere(f)
  const res = await tx.query<ListedWorkflowRow>(
    `select ${f.definition === false ? SUMMARY_COLUMNS : WORKFLOW_COLUMNS}, deploy_attempts, xmin::text as row_version,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_ts
     from public.mvp_workflows where ${where} order by created_at desc, id desc limit $${params.length}`, params)
  return res.rows
}

// A user's list stamp: the newest id in the event log for the user. The mvp_workflows trigger logs
// every insert, update and delete of a row, in commit order (migrations/20250110000000), so while
// the stamp has not moved none of the user's rows has changed: a page read after the stamp is
// still the current page (src/services/workflow-list-cache.ts). The retention purge only removes
// the oldest ids, so it can move the stamp (a miss), never bring an earlier one back.
// Read with the service's (owner's) credential as a prepared statement, for many users at once
// (BatchedLookup): one index lookup per user, no RLS preamble to parse and plan (bench/api.ts).
// It tells the caller nothing but "changed or not".
export const LIST_STAMPS = {
  name: 'workflow_list_stamps_v1',
  text: `select coalesce((select max(e.id) from public.workflow_events e where e.user_id = u), 0)::text as stamp
         from unnest($1::uuid[]) with ordinality as t(u, i) order by i`
} as const

export async function getWorkflow (tx: Queryable, userId: string | null, id: string, forUpdate = false): Promise<WorkflowRow | undefined> {
  const lock = forUpdate ? ' for update' : ''
  const res = userId === null
    ? await tx.query<WorkflowRow>(`${SELECT} where id = $1${lock}`, [id])
    : await tx.query<WorkflowRow>(`${SELECT} where id = $1 and user_id = $2${lock}`, [id, userId])
  return res.rows[0]
}

export async function deleteWorkflow (tx: Queryable, userId: string, id: string): Promise<boolean> {
  const res = await tx.query('delete from public.mvp_workflows where id = $1 and user_id = $2', [id, userId])
  return res.rowCount > 0
}

export async function getIdempotencyKey (tx: Queryable, userId: string, key: string): Promise<IdempotencyRecord | undefined> {
  const res = await tx.query<IdempotencyRecord>(
    `select request_hash, status_code, response, workflow_id, expires_at <= now() as expired
     from public.idempotency_keys where user_id = $1 and key = $2`, [userId, key])
  return res.rows[0]
}
