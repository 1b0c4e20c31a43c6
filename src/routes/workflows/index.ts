import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { executionListSchema, executionsQuery } from '../../schemas/sync.ts'
import { executionStatsQuery, executionStatsSchema } from '../../schemas/stats.ts'
import { conditionalGet, listPageEtag, noneMatch } from './conditional.ts'
import { prebuiltJson } from '../prebuilt-json.ts'
import {
  createWorkflowBody, idempotencyKeyHeader, ifMatchHeader, ifNoneMatchHeader, listWorkflowsQuery, updateWorkflowBody,
  workflowIdParams, workflowListSchema, workflowSchema
} from '../../schemas/workflow.ts'

const runWorkflowBody = z.record(z.string(), z.unknown()).describe('Sent to the webhook as its JSON body').meta({ id: 'RunWorkflowBody' })
const runResultSchema = z.object({
  workflow_id: z.uuid(),
  n8n_workflow_id: z.string(),
  trigger: z.string().describe('The trigger that was called: n8n-nodes-base.webhook'),
  method: z.string().describe('The HTTP method the webhook was called with'),
  n8n_status: z.number().int().describe('n8n\'s HTTP status for the webhook call'),
  accepted_at: z.string()
}).meta({ id: 'RunResult' })

export default async function workflowRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const security = [{ bearerAuth: [] }]
  const write = { rateLimit: { max: app.rateLimits.write, timeWindow: 60_000 } }

  const sendList = prebuiltJson(app, workflowListSchema)
  const notModified = z.null().describe('Not modified: If-None-Match names the current ETag')

  app.get('/workflows', {
    onRequest: app.authenticate,
    onSend: conditionalGet,
    schema: {
      tags: ['workflows'],
      operationId: 'listWorkflows',
      summary: 'The caller\'s workflows, newest first (keyset pagination)',
      description: 'Summaries without `nodes`, `connections` and `settings` unless `include=definition`. The answer carries an `ETag`; send it back as `If-None-Match` to get 304 (no body) while nothing on the page changed.',
      security,
      headers: ifNoneMatchHeader,
      querystring: listWorkflowsQuery,
      response: { 200: workflowListSchema, 304: notModified, ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request, reply) => {
    // The body goes out as the bytes built (or kept) by the service.
    const answer = await app.workflowService.listAnswer(request.scope!, request.query)
    if (answer.tag !== null) {
      const etag = listPageEtag(reply, request.user!.userId, request.query, answer)
      if (noneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send(null)
    }
    return sendList(reply, answer.json)
  })

  app.post('/workflows', {
    onRequest: app.authenticate,
    config: write,
    schema: {
      tags: ['workflows'],
      operationId: 'createWorkflow',
      summary: 'Create a workflow and deploy it to n8n',
      description: 'Saved first (`pending`), then deployed to n8n as `[USR-<8 hex>] <name>`. With n8n down the answer is still 201 with `status: pending` and `last_error`; a later PATCH, redeploy or sync finishes the deploy. A definition n8n refuses answers 201 with `status: error` and n8n\'s reason in `last_error`. The same `Idempotency-Key` (per user, 24 h) replays the first answer (header `Idempotent-Replayed: true`); reused with a different body it answers 409.',
      security,
      headers: idempotencyKeyHeader,
      body: createWorkflowBody,
      response: {
        201: workflowSchema.describe('Created (deployed, or pending/error with last_error)'),
        ...problems(400, 401, 403, 409, 413, 429, 500, 503)
      }
    }
  }, async (request, reply) => {
    const key = request.headers['idempotency-key']
    const result = await app.workflowService.create(request.scope!, request.body, key)
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(201).header('location', `/workflows/${result.body.id}`).header('etag', `"${result.body.version}"`).send(result.body)
  })

  app.get('/workflows/:id', {
    onRequest: app.authenticate,
    onSend: conditionalGet,
    schema: {
      tags: ['workflows'],
      operationId: 'getWorkflow',
      summary: 'One of the caller\'s workflows',
      description: 'The `ETag` is `"<version>.<digest>"`: it changes with any field (counts too). `If-None-Match` with it answers 304 while nothing changed; as `If-Match` on PATCH it stands for the version.',
      security,
      headers: ifNoneMatchHeader,
      params: workflowIdParams,
      response: { 200: workflowSchema, 304: notModified, ...problems(400, 401, 403, 404, 429, 500, 503) }
    }
  }, async (request, reply) => {
    const w = await app.workflowService.get(request.scope!, request.params.id)
    return reply.header('etag', `"${w.version}"`).send(w)
  })

  app.patch('/workflows/:id', {
    onRequest: app.authenticate,
    config: write,
    schema: {
      tags: ['workflows'],
      operationId: 'updateWorkflow',
      summary: 'Change a workflow; n8n is updated to match',
      description: 'Send `If-Match: "<version>"` to change only the version you read (412 otherwise). A workflow that is pending or missing in n8n is deployed again. n8n\'s workflow is updated only when it is this row\'s own (staticData marker and `[USR-]` prefix); otherwise the change is saved, n8n is left alone and the row answers `status: missing_in_n8n` with `last_error` saying why.',
      security,
      params: workflowIdParams,
      headers: ifMatchHeader,
      body: updateWorkflowBody,
      response: { 200: workflowSchema, ...problems(400, 401, 403, 404, 412, 413, 429, 500, 503) }
    }
  }, async (request, reply) => {
    const w = await app.workflowService.update(request.scope!, request.params.id, request.body, request.headers['if-match'])
    return reply.header('etag', `"${w.version}"`).send(w)
  })

  app.delete('/workflows/:id', {
    onRequest: app.authenticate,
    config: write,
    schema: {
      tags: ['workflows'],
      operationId: 'deleteWorkflow',
      summary: 'Delete a workflow from n8n, then from the database',
      description: 'n8n\'s workflow is deleted only when it is this row\'s own (staticData marker and `[USR-]` prefix); otherwise the answer is 409 saying why and the row is kept. A workflow n8n no longer has counts as deleted.',
      security,
      params: workflowIdParams,
      response: { 204: z.null().describe('Deleted'), ...problems(400, 401, 403, 404, 409, 429, 500, 502, 503) }
    }
  }, async (request, reply) => {
    await app.workflowService.delete(request.scope!, request.params.id)
    return reply.code(204).send(null)
  })

  for (const action of ['activate', 'deactivate'] as const) {
    app.post(`/workflows/:id/${action}`, {
      onRequest: app.authenticate,
      config: write,
      schema: {
        tags: ['workflows'],
        operationId: `${action}Workflow`,
        summary: action === 'activate' ? 'Activate in n8n (it must have a trigger node)' : 'Deactivate in n8n',
        description: 'Only n8n\'s workflow that is this row\'s own (staticData marker and `[USR-]` prefix) is switched; otherwise 409 saying why, and the row becomes `missing_in_n8n`.',
        security,
        params: workflowIdParams,
        response: { 200: workflowSchema, ...problems(400, 401, 403, 404, 409, 422, 429, 500, 502, 503) }
      }
    }, async (request, reply) => {
      const w = await app.workflowService.setActive(request.scope!, request.params.id, action === 'activate')
      return reply.header('etag', `"${w.version}"`).send(w)
    })
  }

  app.post('/workflows/:id/redeploy', {
    onRequest: app.authenticate,
    config: write,
    schema: {
      tags: ['workflows'],
      operationId: 'redeployWorkflow',
      summary: 'Deploy the workflow to n8n again (pending, error or missing_in_n8n)',
      description: 'Makes n8n match the database: creates the workflow when n8n lost it, updates it otherwise, and restores its active flag. A row whose n8n id names a workflow that is not its own gets its own (adopted by marker, or created); the other one is left alone. The answer is the row; with n8n down it stays pending with last_error.',
      security,
      params: workflowIdParams,
      response: { 200: workflowSchema, ...problems(400, 401, 403, 404, 409, 429, 500, 503) }
    }
  }, async (request, reply) => {
    const w = await app.workflowService.redeploy(request.scope!, request.params.id)
    return reply.header('etag', `"${w.version}"`).send(w)
  })

  app.post('/workflows/:id/run', {
    onRequest: app.authenticate,
    config: write,
    schema: {
      tags: ['workflows'],
      operationId: 'runWorkflow',
      summary: 'Run the workflow now, through its Webhook trigger in n8n',
      description: 'n8n\'s public API cannot run a workflow; a workflow whose trigger is a Webhook node (`n8n-nodes-base.webhook`) is run by calling that webhook on n8n (N8N_WEBHOOK_URL), with the optional JSON body as the request body (POST/PUT/PATCH/DELETE webhooks; a GET webhook takes none). Answers 202 once n8n accepted the call; the execution then reaches the counts, `last_execution_*` and `/events` through the live tail. Any other trigger: 422 naming the runnable triggers. The workflow must be deployed and active (409 otherwise), and its n8n copy must carry the row\'s marker.',
      security,
      params: workflowIdParams,
      // No body at all: the webhook is called without one (a POST webhook gets `{}`).
      body: runWorkflowBody.nullish(),
      response: { 202: runResultSchema, ...problems(400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503) }
    }
  }, async (request, reply) => {
    const result = await app.workflowRunner.run(request.scope!, request.params.id, request.body)
    return reply.code(202).send(result)
  })

  app.get('/workflows/:id/executions', {
    onRequest: app.authenticate,
    schema: {
      tags: ['workflows', 'sync'],
      operationId: 'listWorkflowExecutions',
      summary: 'Execution history of one workflow from the ledger, newest first',
      description: 'The ledger holds every execution a sync has seen, also after n8n pruned it (until EXECUTION_RETENTION_DAYS).',
      security,
      params: workflowIdParams,
      querystring: executionsQuery,
      response: { 200: executionListSchema, ...problems(400, 401, 403, 404, 429, 500, 503) }
    }
  }, async (request) => app.syncHistory.listExecutions(request.scope!, request.params.id, {
    limit: request.query.limit,
    cursor: request.query.cursor ?? null,
    status: request.query.status ?? null
  }))

  app.get('/workflows/:id/stats', {
    onRequest: app.authenticate,
    schema: {
      tags: ['workflows', 'stats'],
      operationId: 'getWorkflowStats',
      summary: 'Executions of one workflow per hour or day: counts by status, success rate, duration average, p50 and p95',
      description: 'From the ledger (kept as a rollup, so a year answers in milliseconds; figures outlive EXECUTION_RETENTION_DAYS like the counts do). Buckets are UTC, by the time an execution started; every bucket of the window is listed, oldest first.',
      security,
      params: workflowIdParams,
      querystring: executionStatsQuery,
      response: { 200: executionStatsSchema, ...problems(400, 401, 403, 404, 429, 500, 503) }
    }
  }, async (request) => app.executionStats.stats(request.scope!, request.params.id, request.query))
}
