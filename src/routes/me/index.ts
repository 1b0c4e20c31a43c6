import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { prebuiltJson } from '../prebuilt-json.ts'

const meSchema = z.object({
  user_id: z.uuid(),
  email: z.string().nullable(),
  role: z.literal('authenticated'),
  expires_at: z.string().describe('When the access token expires (ISO 8601)')
}).meta({ id: 'Me' })

export default async function meRoutes (fastify: FastifyInstance): Promise<void> {
  // The auth plugin hands out one identity object per verified token: its answer is built and
  // serialized once, then sent as it is (no promise, no serializer: the common request pays a
  // WeakMap read).
  const answers = new WeakMap<object, string>()
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const sendMe = prebuiltJson(app, meSchema)
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
      json = JSON.stringify({ user_id: u.userId, email: u.email, role: u.role, expires_at: new Date(u.expiresAt * 1000).toISOString() })
      answers.set(u, json)
    }
    sendMe(reply, json)
  })
}
