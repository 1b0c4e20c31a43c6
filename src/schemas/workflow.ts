import { z } from 'zod'
import { cursorParam } from './common.ts'

export const workflowStatus = z.enum(['pending', 'deployed', 'error', 'missing_in_n8n'])

const uuid = z.uuid()
const timestamp = z.string().describe('ISO 8601 timestamp')

// n8n 1.x rejects unknown settings keys; accepting only what it knows turns its 400 into ours.
export const n8nSettingsSchema = z.strictObject({
  saveExecutionProgress: z.boolean().optional(),
  saveManualExecutions: z.boolean().optional(),
  saveDataErrorExecution: z.enum(['all', 'none']).optional(),
  saveDataSuccessExecution: z.enum(['all', 'none']).optional(),
  executionTimeout: z.number().int().min(-1).optional(),
  errorWorkflow: z.string().optional(),
  timezone: z.string().optional(),
  executionOrder: z.enum(['v0', 'v1']).optional(),
  callerPolicy: z.enum(['any', 'none', 'workflowsFromAList', 'workflowsFromSameOwner']).optional(),
  callerIds: z.string().optional(),
  timeSavedPerExecution: z.number().optional(),
  availableInMCP: z.boolean().optional()
}).meta({ id: 'WorkflowSettings', description: 'n8n workflow settings; only keys n8n accepts' })

export const n8nNodeSchema = z.looseObject({
  name: z.string().min(1).max(200),
  type: z.string().min(1).max(200),
  typeVersion: z.number().optional(),
  position: z.tuple([z.number(), z.number()]).optional(),
  parameters: z.record(z.string(), z.unknown()).optional()
}).meta({ id: 'WorkflowNode', description: 'An n8n node (other n8n node fields are passed through)' })

export const nodesSchema = z.array(n8nNodeSchema).max(500)
export const connectionsSchema = z.record(z.string(), z.unknown())

export const workflowSchema = z.object({
  id: uuid,
  user_id: uuid,
  name: z.string(),
  description: z.string().nullable(),
  active: z.boolean(),
  status: workflowStatus,
  n8n_workflow_id: z.string().nullable(),
  nodes: z.array(z.record(z.string(), z.unknown())),
  connections: connectionsSchema,
  settings: z.record(z.string(), z.unknown()),
  execution_count: z.number().int(),
  successful_executions: z.number().int(),
  failed_executions: z.number().int(),
  last_execution_at: timestamp.nullable(),
  last_execution_status: z.string().nullable(),
  last_sync_at: timestamp.nullable(),
  last_error: z.string().nullable(),
  version: z.number().int(),
  created_at: timestamp,
  updated_at: timestamp
}).meta({ id: 'Workflow', description: 'A workflow as stored in mvp_workflows (the same shape Supabase Realtime sends)' })

export type Workflow = z.infer<typeof workflowSchema>

export const workflowListItemSchema = workflowSchema.extend({
  nodes: workflowSchema.shape.nodes.optional().describe('Only with include=definition'),
  connections: workflowSchema.shape.connections.optional().describe('Only with include=definition'),
  settings: workflowSchema.shape.settings.optional().describe('Only with include=definition')
}).meta({ id: 'WorkflowListItem', description: 'A workflow in a list: a summary without nodes, connections and settings, unless include=definition' })

export type WorkflowListItem = z.infer<typeof workflowListItemSchema>

export const workflowName = z.string().trim().min(1).max(100)
  .describe('Shown in n8n as "[USR-<first 8 hex of user id>] <name>"; n8n allows 128 characters in all')

export const createWorkflowBody = z.strictObject({
  name: workflowName,
  description: z.string().max(2000).nullable().optional(),
  nodes: nodesSchema.default([]),
  connections: connectionsSchema.default({}),
  settings: n8nSettingsSchema.default({}),
  active: z.boolean().default(false).describe('Activate in n8n right after the deploy')
}).meta({ id: 'CreateWorkflow' })

export const updateWorkflowBody = z.strictObject({
  name: workflowName.optional(),
  description: z.string().max(2000).nullable().optional(),
  nodes: nodesSchema.optional(),
  connections: connectionsSchema.optional(),
  settings: n8nSettingsSchema.optional()
}).refine((b) => Object.keys(b).length > 0, { message: 'at least one field to change is required' })
  .meta({ id: 'UpdateWorkflow', minProperties: 1 })

export const workflowIdParams = z.object({ id: z.uuid().describe('Workflow id') })

export const listWorkflowsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: cursorParam(200),
  status: workflowStatus.optional(),
  active: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  include: z.enum(['definition']).optional().describe('definition: also nodes, connections and settings (default: summaries without them)')
})

export const workflowListSchema = z.object({
  data: z.array(workflowListItemSchema),
  next_cursor: z.string().nullable()
}).meta({ id: 'WorkflowList' })

export const idempotencyKeyHeader = z.object({
  'idempotency-key': z.string().min(1).max(200).optional()
    .describe('Repeat a create safely: the same key returns the first answer for 24 h')
})

export const ifMatchHeader = z.object({
  'if-match': z.string().regex(/^(\*|(W\/)?"[0-9]{1,9}(\.[A-Za-z0-9_-]{1,32})?")$/, 'must be the workflow\'s version in quotes (its ETag), e.g. "3", or *').optional()
    .describe('The workflow\'s version in quotes, as sent in its ETag (e.g. `"3"`, or the `"<version>.<digest>"` ETag of GET /workflows/{id}; `*`: any version); a version mismatch answers 412')
})

export const ifNoneMatchHeader = z.object({
  'if-none-match': z.string().max(500).optional().describe('An ETag of an earlier answer: 304 while it is still current')
})
