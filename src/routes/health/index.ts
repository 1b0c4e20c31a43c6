import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'

const readySchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  database: z.object({ ok: z.boolean(), kind: z.enum(['pg', 'pglite', 'supabase']), latency_ms: z.number().nullable() }),
  n8n: z.object({ reachable: z.boolean() })
}).meta({ id: 'Readiness' })

export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()

  app.get('/health', {
    config: { rateLimit: false },
    schema: {
      tags: ['operations'],
      operationId: 'getHealth',
      summary: 'Liveness: the process answers',
      security: [],
      response: { 200: z.object({ status: z.literal('ok') }) }
    }
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    config: { rateLimit: false },
    schema: {
      tags: ['operations'],
      operationId: 'getReadiness',
      summary: 'Readiness: 200 when the database answers, 503 otherwise; reports whether n8n is reachable',
      security: [],
      response: { 200: readySchema, 503: readySchema.describe('The database does not answer'), ...problems(500) }
    }
  }, async (_request, reply) => {
    const started = performance.now()
    const [dbOk, n8nOk] = await Promise.all([
      app.store.ping(2000),
      app.n8n.ping(2000)
    ])
    const body = {
      status: dbOk ? 'ready' as const : 'unavailable' as const,
      database: { ok: dbOk, kind: app.store.kind, latency_ms: dbOk ? Math.round((performance.now() - started) * 10) / 10 : null },
      n8n: { reachable: n8nOk }
    }
    return reply.code(dbOk ? 200 : 503).send(body)
  })

  app.get('/openapi.json', {
    config: { rateLimit: false },
    schema: { hide: true }
  }, async () => app.swagger())
}
