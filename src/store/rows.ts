// Rows that arrive as JSON (from the SQL functions' jsonb answers, or from PostgREST) in the exact
// shape the pg driver gives the Postgres store: timestamps as UTC ISO 8601 strings with Postgres's
// microseconds ("2025-01-08T10:00:00.123456Z"), counts as numbers, nothing but the known columns.
import { microseconds } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import type { CreateOutcome } from './store.ts'
import type { WorkflowRow } from './workflow-store.ts'

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
