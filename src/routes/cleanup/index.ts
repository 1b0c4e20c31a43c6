import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { cleanupBody, cleanupReportSchema } from '../../schemas/sync.ts'

export default async function cleanupRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  app.post('/cleanup', {
    onRequest: app.authenticateCron,
    // No body at all (curl -X POST, Swagger without an example) means the defaults.
    preValidation: async (request) => { (request as { body: unknown }).body ??= {} },
    config: { rateLimit: { max: app.rateLimits.sync, timeWindow: 60_000 } },
    schema: {
      tags: ['cron'],
      operationId: 'runCleanup',
      summary: 'Housekeeping: orphaned [USR-] workflows in n8n, old sync logs and ledger rows',
      description: 'Cron credential only. Deletes n8n workflows named `[USR-…` that no row owns once n8n last changed them more than CLEANUP_GRACE_MINUTES ago (never one without the prefix); purges sync_logs older than SYNC_LOG_RETENTION_DAYS and final ledger rows older than EXECUTION_RETENTION_DAYS (counts are kept) and expired idempotency keys. One cleanup at a time across replicas (409 while one runs). Writes a sync_logs row of type `cleanup` unless `dry_run`.',
      security: [{ bearerAuth: [] }],
      body: cleanupBody.optional(),
      response: { 200: cleanupReportSchema, ...problems(400, 401, 403, 409, 429, 500, 503) }
    }
  }, async (request) => app.cleanup.run({ dryRun: request.body?.dry_run === true }))
}
