import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { executionStatsQuery, executionStatsSchema } from '../../schemas/stats.ts'

export default async function statsRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  app.get('/stats', {
    onRequest: app.authenticate,
    schema: {
      tags: ['stats'],
      operationId: 'getStats',
      summary: 'Executions of all the caller\'s workflows together, per hour or day',
      description: 'The same figures as GET /workflows/{id}/stats, over every workflow of the caller.',
      security: [{ bearerAuth: [] }],
      querystring: executionStatsQuery,
      response: { 200: executionStatsSchema, ...problems(400, 401, 403, 429, 500, 503) }
    }
  }, async (request) => app.executionStats.stats(request.scope!, null, request.query))
}
