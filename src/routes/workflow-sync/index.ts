import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { problems } from '../../schemas/problem.ts'
import { cleanupReportSchema, compatActions, compatBody, syncResultSchema } from '../../schemas/sync.ts'
import { AppError } from '../../errors.ts'

export default async function workflowSyncCompatRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()

  app.post('/workflow-sync', {
    onRequest: app.authenticateUserOrCron,
    config: { rateLimit: { max: app.rateLimits.sync, timeWindow: 60_000 } },
    schema: {
      tags: ['sync', 'cron'],
      operationId: 'edgeFunctionCompat',
      summary: 'Drop-in for the old workflow-sync Edge Function',
      description: '`{"action": "sync_all_workflows"}`: a user token syncs the caller\'s workflows, the cron credential syncs everyone\'s. `{"action": "cleanup_workflows"}`: cron credential only, same as `POST /cleanup`. Any other action answers 400 listing the valid ones.',
      security: [{ bearerAuth: [] }],
      body: compatBody,
      response: { 200: z.union([syncResultSchema, cleanupReportSchema]), ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request) => {
    const { action } = request.body
    const scope = request.scope!
    switch (action) {
      case 'sync_all_workflows':
        return scope.kind === 'service' ? app.syncEngine.syncAll() : app.syncEngine.syncUser(scope)
      case 'cleanup_workflows':
        if (scope.kind !== 'service') throw new AppError('forbidden', 'cleanup_workflows needs the cron credential')
        return app.cleanup.run({ dryRun: request.body.dry_run === true })
      default:
        throw new AppError('validation_failed', `Unknown action "${String(action).slice(0, 50)}"; valid actions: ${compatActions.join(', ')}`, {
          errors: [{ path: 'body/action', message: `must be one of: ${compatActions.join(', ')}` }]
        })
    }
  })
}
