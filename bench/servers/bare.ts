// What the bare Fastify bench servers share: listen on a free port, tell the parent which, and
// answer 'cpu' with this process's CPU time (the per-request cost, much less sensitive than req/s
// to other load on a shared machine) and 'stop' by exiting.
import type { FastifyInstance } from 'fastify'

export async function serveBare (app: FastifyInstance): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0 })
  process.on('message', (m) => {
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() })
    if (m === 'stop') process.exit(0)
  })
}
