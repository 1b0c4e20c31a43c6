// The machine's bare baseline: a Fastify hello-world, no plugins.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0 })
// CPU time of this process on request: the per-request cost, much less sensitive than req/s to
// other load on a shared machine.
process.on('message', (m) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() })
  if (m === 'stop') process.exit(0)
})
