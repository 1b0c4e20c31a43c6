// The real service for P4 (bench/events.ts): a fresh server Postgres database, migrated at boot,
// default pool and event settings. Answers { port, databaseUrl, secret } once listening, and
// { stats, streams } to 'stats'.
import { BENCH_SECRET, startBenchApp } from './bench-app.ts'

const { app, databaseUrl, close } = await startBenchApp('ws_bench_events')
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, databaseUrl, secret: BENCH_SECRET })
process.on('message', async (m) => {
  if (m === 'stats') {
    process.send?.({ stats: app.events.stats, streams: app.events.streamCount })
  }
  if (m === 'stop') {
    await close()
    process.exit(0)
  }
})
