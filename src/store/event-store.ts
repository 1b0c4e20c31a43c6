import type { Queryable } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import type { EventLogPosition, EventLogRow } from './rows.ts'
import { WORKFLOW_COLUMNS } from './workflow-store.ts'

// The Postgres store's SQL of the live events (GET /events): the event log written by the mvp_workflows trigger
// (supabase/migrations/20250110000000_workflow_events.sql) and the rows the events carry.

// Ids travel as one JSON text parameter, so the statements also run through
// Database.readAsUser (which inlines parameters as literals).
const ID_LIST = (param: string): string => `array(select jsonb_array_elements_text(${param}::jsonb))::uuid[]`

export type { EventLogPosition, EventLogRow, EventOp } from './rows.ts'

/**
 * Rows by id, in the contract's shape. The service path (one query for a batch of events of
 * many users): the caller delivers a row only to the user whose event it is and who owns it.
 */
export async function loadWorkflowsByIds (q: Queryable, ids: string[]): Promise<Workflow[]> {
  if (ids.length === 0) return []
  const res = await q.query<Workflow>(`select ${WORKFLOW_COLUMNS} from public.mvp_workflows where id = any(${ID_LIST('$1')})`, [JSON.stringify(ids)])
  return res.rows
}

/** A user's rows by id (under RLS as that user; the filter repeats the policy). */
export async function loadUserWorkflowsByIds (q: Queryable, userId: string, ids: string[]): Promise<Workflow[]> {
  if (ids.length === 0) return []
  const res = await q.query<Workflow>(
    `select ${WORKFLOW_COLUMNS} from public.mvp_workflows where id = any(${ID_LIST('$2')}) and user_id = $1`, [userId, JSON.stringify(ids)])
  return res.rows
}

/** A user's events after `afterId`, oldest first, at most `limit`. */
export async function readEventLog (q: Queryable, userId: string, afterId: number, limit: number): Promise<EventLogRow[]> {
  const res = await q.query<EventLogRow>(
    `select id, op, workflow_id from public.workflow_events
      where user_id = $1 and id > $2 order by id limit $3`, [userId, afterId, limit])
  return res.rows
}

export async function eventLogPosition (q: Queryable, userId: string): Promise<EventLogPosition> {
  const res = await q.query<{ head: number | string, horizon: number | string }>(
    `select coalesce((select max(id) from public.workflow_events where user_id = $1), 0)::bigint as head,
            coalesce((select purged_through from public.workflow_events_purged), 0)::bigint as horizon`, [userId])
  const r = res.rows[0]
  return { head: Number(r?.head ?? 0), horizon: Number(r?.horizon ?? 0) }
}
