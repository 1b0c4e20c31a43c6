import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'

const partStatus = z.enum(['up', 'down']).describe('`up`: answered within 2 s; `down`: did not')
const readySchema = z.object({
  status: z.enum(['ready', 'degraded', 'unavailable']).describe('`ready`: every part is up; `degraded`: the database is up but n8n (or the live events connection) is not, so reads and writes are served and deploys wait; `unavailable`: the database is down, stop routing here (HTTP 503)'),
  database: z.object({ ok: z.boolean(), status: partStatus, kind: z.enum(['pg', 'pglite', 'supabase']), latency_ms: z.number().nullable() }),
  n8n: z.object({
    reachable: z.boolean(),
    status: partStatus,
    latency_ms: z.number().nullable(),
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
    }).nullable().describe('The live tail on this replica (LIVE_SYNC_INTERVAL_MS); null when it is off')
  }),
  events: z.object({
    status: z.enum(['listening', 'reconnecting', 'off']).describe('The LISTEN connection behind GET /events: `reconnecting` while it is being opened again (streams catch up afterwards); `off` in Supabase mode'),
    streams: z.number().int()
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
      summary: 'Readiness: 200 when the database answers (status `ready`, or `degraded` when n8n is not reachable), 503 when it does not; each part reported separately',
      security: [],
      response: { 200: readySchema, 503: readySchema.describe('The database does not answer'), ...problems(500) }
    }
  }, async (_request, reply) => {
    const timed = async (ping: Promise<boolean>): Promise<{ ok: boolean, ms: number | null }> => {
      const started = performance.now()
      const ok = await ping
      return { ok, ms: ok ? Math.round((performance.now() - started) * 10) / 10 : null }
    }
    const [db, n8n] = await Promise.all([timed(app.store.ping(2000)), timed(app.n8n.ping(2000))])
    const hub = app.hasDecorator('events') ? app.events : null
    const events = { status: hub ? (hub.listening ? 'listening' as const : 'reconnecting' as const) : 'off' as const, streams: hub?.streamCount ?? 0 }
    const dbOk = db.ok
    const body = {
      status: !dbOk ? 'unavailable' as const : n8n.ok && events.status !== 'reconnecting' ? 'ready' as const : 'degraded' as const,
      database: { ok: dbOk, status: dbOk ? 'up' as const : 'down' as const, kind: app.store.kind, latency_ms: db.ms },
      n8n: { reachable: n8n.ok, status: n8n.ok ? 'up' as const : 'down' as const, latency_ms: n8n.ms, live_tail: app.liveTail?.status() ?? null },
      events
    }
    return reply.code(dbOk ? 200 : 503).send(body)
  })

  app.get('/openapi.json', {
    config: { rateLimit: false },
    schema: { hide: true }
  }, async () => app.swagger())
}
