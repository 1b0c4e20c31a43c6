import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { pageQuery, statsQuery, syncBody, syncLogListSchema, syncResultSchema, syncStatsSchema } from '../../schemas/sync.ts'

export default async function syncRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const security = [{ bearerAuth: [] }]
  // A sync costs n8n calls: its own, stricter per-user limit.
  const syncLimit = { rateLimit: { max: app.rateLimits.sync, timeWindow: 60_000 } }

  app.post('/sync', {
    onRequest: app.authenticate,
    // No body at all (curl -X POST, Swagger without an example) means the defaults.
    preValidation: async (request) => { (request as { body: unknown }).body ??= {} },
    config: syncLimit,
    schema: {
      tags: ['sync'],
      operationId: 'syncMyWorkflows',
      summary: 'Sync the caller\'s workflows (or some of them) from n8n',
      description: `Pulls new executions from n8n into the ledger and updates the counts, retries pending deploys and repairs drift (the database wins). One sync per user at a time: a second request while one runs waits for it and answers its result. Rate limit: ${app.rateLimits.sync} per minute per user. The answer is 200 whatever the outcome; \`status\` says it (success, partial, failed) and \`errors\` lists each workflow that failed.`,
      security,
      body: syncBody.optional(),
      response: { 200: syncResultSchema, ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request) => app.syncEngine.syncUser(request.scope!, request.body?.workflow_ids ? { workflowIds: request.body.workflow_ids } : {}))

  app.post('/sync/all', {
    onRequest: app.authenticateCron,
    config: syncLimit,
    schema: {
      tags: ['sync', 'cron'],
      operationId: 'syncAllWorkflows',
      summary: 'Sync every user\'s workflows (cron credential)',
      description: 'Takes `Authorization: Bearer <CRON_SECRET>` or a `service_role` JWT; a user token answers 403.',
      security,
      response: { 200: syncResultSchema, ...problems(401, 403, 429, 500, 503) }
    }
  }, async () => app.syncEngine.syncAll())

  app.get('/sync/logs', {
    onRequest: app.authenticateUserOrCron,
    schema: {
      tags: ['sync'],
      operationId: 'listSyncLogs',
      summary: 'Sync history, newest first: the caller\'s own, or everyone\'s with the cron credential',
      security,
      querystring: pageQuery,
      response: { 200: syncLogListSchema, ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request) => app.syncHistory.listLogs(request.scope!, { limit: request.query.limit, cursor: request.query.cursor ?? null }))

  app.get('/sync/stats', {
    onRequest: app.authenticateUserOrCron,
    schema: {
      tags: ['sync'],
      operationId: 'getSyncStats',
      summary: 'Per sync type and status: count and average duration, and the success rate',
      security,
      querystring: statsQuery,
      response: { 200: syncStatsSchema, ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request) => app.syncHistory.stats(request.scope!, request.query.hours))
}
