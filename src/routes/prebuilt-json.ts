import type { FastifyInstance, FastifyReply } from 'fastify'
import type { z } from 'zod'

/**
 * A sender for answers whose JSON was built ahead (kept bytes: GET /workflows' list cache, /me's
 * answer per token). They go out past the response serializer, so outside production each is
 * checked against the route's documented schema here instead, as the serializer would have.
 */
export function prebuiltJson (app: FastifyInstance, schema: z.ZodType): (reply: FastifyReply, json: string | Buffer) => FastifyReply {
  const check = app.config.NODE_ENV !== 'production'
  return (reply, json) => {
    if (check) schema.parse(JSON.parse(json.toString()))
    return reply.type('application/json; charset=utf-8').send(json)
  }
}
