import { z } from 'zod'
import { cursorParam } from './common.ts'

export const syncErrorSchema = z.object({
  workflow_id: z.string(),
  code: z.string(),
  message: z.string()
})

export const syncResultSchema = z.object({
  sync_log_id: z.uuid(),
  status: z.enum(['success', 'partial', 'failed']),
  workflows_synced: z.number().int(),
  workflows_failed: z.number().int(),
  executions_ingested: z.number().int(),
  duration_ms: z.number().int(),
  errors: z.array(syncErrorSchema),
  error: z.string().nullable().describe('Why the sync was not a success, e.g. "n8n is unavailable: connection refused at http://127.0.0.1:5678/api/v1"; null on success')
}).meta({ id: 'SyncResult', description: 'success: every workflow synced; partial: some failed (see errors); failed: none synced' })

export const syncBody = z.strictObject({
  workflow_ids: z.array(z.uuid()).min(1).max(500).optional().describe('Only these of the caller\'s workflows (default: all of them)')
}).meta({ id: 'SyncRequest' })

export const syncLogSchema = z.object({
  id: z.uuid(),
  user_id: z.uuid().nullable(),
  sync_type: z.string().describe('user | workflows | all | cleanup'),
  status: z.string(),
  duration_ms: z.number().int(),
  workflows_synced: z.number().int(),
  workflows_failed: z.number().int(),
  executions_ingested: z.number().int(),
  error: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  created_at: z.string()
}).meta({ id: 'SyncLog' })

export const syncLogListSchema = z.object({
  data: z.array(syncLogSchema),
  next_cursor: z.string().nullable()
}).meta({ id: 'SyncLogList' })

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: cursorParam(300)
})

export const statsQuery = z.object({
  hours: z.coerce.number().int().min(1).max(24 * 90).default(24).describe('Window, in hours')
})

export const syncStatsSchema = z.object({
  hours: z.number().int(),
  since: z.string(),
  total: z.number().int(),
  success_rate: z.number().nullable().describe('Successful syncs / all syncs in the window'),
  by_type: z.array(z.object({ sync_type: z.string(), count: z.number().int(), success_rate: z.number(), avg_duration_ms: z.number() })),
  groups: z.array(z.object({ sync_type: z.string(), status: z.string(), count: z.number().int(), avg_duration_ms: z.number() }))
    .describe('The old monitoring query: per sync_type and status, count and average duration')
}).meta({ id: 'SyncStats' })

export const executionSchema = z.object({
  id: z.number().int(),
  workflow_id: z.uuid(),
  n8n_execution_id: z.string(),
  status: z.string().describe('n8n status: success, error, crashed, canceled, waiting, running, new, unknown'),
  mode: z.string().nullable(),
  finished: z.boolean(),
  started_at: z.string().nullable(),
  stopped_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string()
}).meta({ id: 'Execution' })

export const executionListSchema = z.object({
  data: z.array(executionSchema),
  next_cursor: z.string().nullable()
}).meta({ id: 'ExecutionList' })

export const executionsQuery = pageQuery.extend({
  status: z.enum(['success', 'error', 'crashed', 'canceled', 'waiting', 'running', 'new', 'unknown']).optional()
})

export const compatActions = ['sync_all_workflows', 'cleanup_workflows'] as const
export const compatBody = z.object({
  action: z.enum(compatActions, { error: `must be one of: ${compatActions.join(', ')}` })
    .describe('sync_all_workflows: sync (a user token: the caller\'s workflows; the cron credential: everyone\'s); cleanup_workflows: housekeeping (cron credential only)')
}).loose().meta({ id: 'EdgeFunctionRequest', description: 'The old Edge Function\'s request body' })

const orphanSchema = z.object({ n8n_workflow_id: z.string(), name: z.string(), updated_at: z.string().nullable() })

export const cleanupBody = z.strictObject({
  dry_run: z.boolean().default(false).describe('Report what would be done; change nothing (and write no sync log)')
}).meta({ id: 'CleanupRequest' })

export const cleanupReportSchema = z.object({
  sync_log_id: z.uuid().nullable().describe('The sync_logs row (type cleanup); null on a dry run'),
  dry_run: z.boolean(),
  status: z.enum(['success', 'partial', 'failed']),
  duration_ms: z.number().int(),
  n8n_workflows_scanned: z.number().int(),
  orphans_deleted: z.array(orphanSchema).describe('Deleted (on a dry run: would be deleted)'),
  orphans_in_grace: z.array(orphanSchema).describe('Orphaned, but changed in n8n within CLEANUP_GRACE_MINUTES: kept'),
  orphans_failed: z.array(orphanSchema.extend({ message: z.string() })),
  purged: z.record(z.string(), z.number().int()).describe('Rows removed (dry run: would be removed) per table: sync_logs, executions, idempotency_keys, …'),
  errors: z.array(z.object({ code: z.string(), message: z.string() }))
}).meta({ id: 'CleanupReport' })
