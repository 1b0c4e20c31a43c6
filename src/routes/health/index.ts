import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'

const readySchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  database: z.object({ ok: z.boolean(), kind: z.enum(['pg', 'pglite', 'supabase']), latency_ms: z.number().nullable() }),
  n8n: z.object({
    reachable: z.boolean(),
    live_tail: z.object({
      role: z.enum(['off', 'standby', 'leader']).describe('leader: this replica tails n8n; standby: another replica does (or will take over)'),
      state: z.enum(['off', 'standby', 'backfill', 'tailing', 'backoff']).describe('backoff: the last tick failed (n8n or the database down); it retries with backoff'),
      interval_ms: z.number().int(),
      epoch: z.string().nullable().describe('The leader\'s fencing token'),
      frontier: z.string().nullable().describe('Every n8n execution id at or below it is in the ledger (or tracked until final)'),
      lag_seconds: z.number().nullable().describe('Leader: seconds since the start of its last successful tick'),
      last_tick_at: z.string().nullable(),
      consecutive_errors: z.number().int(),
      last_error: z.string().nullable(),
      retry_in_ms: z.number().int().nullable(),
      running_list: z.enum(['supported', 'unsupported', 'unknown'])
    }).nullable().describe('The live tail on this replica; null when LIVE_SYNC_INTERVAL_MS is 0')
  })
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
      n8n: { reachable: n8nOk, live_tail: app.liveTail?.status() ?? null }
    }
    return reply.code(dbOk ? 200 : 503).send(body)
  })

  app.get('/openapi.json', {
    config: { rateLimit: false },
    schema: { hide: true }
  }, async () => app.swagger())
}
