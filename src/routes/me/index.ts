import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'

const meSchema = z.object({
  user_id: z.uuid(),
  email: z.string().nullable(),
  role: z.literal('authenticated'),
  expires_at: z.string().describe('When the access token expires (ISO 8601)')
}).meta({ id: 'Me' })

export default async function meRoutes (fastify: FastifyInstance): Promise<void> {
  // The auth plugin hands out one identity object per verified token: its answer is built and
  // serialized once, then sent as it is (no promise, no serializer: the common request pays a
  // WeakMap read). Past the response serializer, so outside production it is checked against the
  // documented shape here instead (as the serializer did; production never checked it).
  const answers = new WeakMap<object, string>()
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const checkAnswers = app.config.NODE_ENV !== 'production'
  app.get('/me', {
    onRequest: app.authenticate,
    schema: {
      tags: ['account'],
      operationId: 'getMe',
      summary: 'The verified caller',
      security: [{ bearerAuth: [] }],
      response: { 200: meSchema, ...problems(401, 403, 429, 500) }
    }
  }, (request, reply) => {
    const u = request.user!
    let json = answers.get(u)
    if (json === undefined) {
      const body = { user_id: u.userId, email: u.email, role: u.role, expires_at: new Date(u.expiresAt * 1000).toISOString() }
      json = JSON.stringify(checkAnswers ? meSchema.parse(body) : body)
      answers.set(u, json)
    }
    reply.type('application/json; charset=utf-8').send(json as never)
  })
}
