import { z } from 'zod'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems, problemSchema } from '../../schemas/problem.ts'

/**
 * A scraper on the same host, connected directly: the TCP peer (not `request.ip`, which trusts
 * X-Forwarded-For) is a loopback address and no proxy header says the request came from further.
 */
export function isDirectLoopback (request: FastifyRequest): boolean {
  const addr = request.socket.remoteAddress
  if (addr === undefined) return false
  const loopback = addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.')
  if (!loopback) return false
  const h = request.headers
  return h['x-forwarded-for'] === undefined && h.forwarded === undefined && h['x-real-ip'] === undefined
}

export const metricsAccessDescription = [
  'Prometheus text exposition format (`text/plain; version=0.0.4`).',
  '',
  'Who may read it: a request that carries `Authorization` must be the cron credential (`CRON_SECRET` or a `service_role` JWT; a user token is 403).',
  'Without `Authorization` it is answered only to a scraper connected directly from the loopback interface (no `X-Forwarded-For`, `Forwarded` or `X-Real-IP` header),',
  'or to anyone when `CRON_SECRET` is not set and `NODE_ENV` is not `production`; otherwise 401.',
  'Not rate-limited, so that scrapes are never refused.'
].join('\n')

export default async function metricsRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const openWithoutCredential = !app.config.CRON_SECRET && app.config.NODE_ENV !== 'production'

  async function metricsAccess (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.headers.authorization === undefined && (openWithoutCredential || isDirectLoopback(request))) return
    await app.authenticateCron(request, reply)
  }

  app.get('/metrics', {
    onRequest: metricsAccess,
    config: { rateLimit: false },
    schema: {
      tags: ['operations'],
      operationId: 'getMetrics',
      summary: 'Prometheus metrics: requests, syncs, n8n calls, rate limits, event streams, database pool, process',
      description: metricsAccessDescription,
      // Optional credential: the cron bearer, or none where the rule above allows it.
      security: [{ bearerAuth: [] }, {}],
      response: {
        200: {
          description: 'The metrics, in the Prometheus text format',
          content: { 'text/plain': { schema: z.string().describe('Prometheus text exposition format 0.0.4') } }
        },
        ...problems(401, 403, 500),
        // Declared because every secured operation lists it; /metrics itself is exempt from rate limits.
        429: problemSchema.describe('Not answered by /metrics (exempt from rate limits); listed for uniformity with the other secured operations')
      }
    }
  }, async (_request, reply) => {
    const { contentType, body } = await app.metrics.render()
    return reply.type(contentType).send(body)
  })
}
