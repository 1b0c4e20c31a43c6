// The floor for GET /me: a bare Fastify hello-world answering /me's exact shape (a request id, the
// three rate-limit headers, the identity JSON) with none of the work behind it (no token, no
// count, no hooks). What /me costs above this row is its logic; what this row costs above
// hello-world is the answer itself.
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { serveBare } from './bare.ts'

const app = Fastify({ logger: false, genReqId: () => randomUUID() })
const body = JSON.stringify({ user_id: randomUUID(), email: 'bench@example.com', role: 'authenticated', expires_at: new Date(Date.now() + 3_600_000).toISOString() })
let remaining = 1_000_000
app.get('/me', (request, reply) => {
  reply.header('x-request-id', request.id)
  reply.header('x-ratelimit-limit', '1000000')
  reply.header('x-ratelimit-remaining', String(--remaining))
  reply.header('x-ratelimit-reset', '60')
  reply.type('application/json; charset=utf-8').send(body)
})
await serveBare(app)
