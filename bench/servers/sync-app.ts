// The real service for the sync benchmark, in its own process: buildApp on the database the bench
// prepared (BENCH_DATABASE_URL), n8n at the simulator (N8N_API_URL), N8N_CONCURRENCY and
// CRON_SECRET from the environment. BENCH_SYNC_ALL_STRATEGY ('scan' | 'per_workflow') swaps in an
// engine with that /sync/all strategy (the app builds one with the default); nothing else differs
// (BENCH_SCAN_BUFFER, BENCH_INGEST_LANES: the engine's scanBufferLimit and ingestLanes, for experiments).
import { writeHeapSnapshot } from 'node:v8'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import type { SyncAllStrategy } from '../../src/sync/types.ts'

const env = process.env
const config = loadConfig({
  NODE_ENV: 'production',
  LOG_LEVEL: 'silent',
  DATABASE_URL: env.BENCH_DATABASE_URL,
  SUPABASE_JWT_SECRET: env.BENCH_JWT_SECRET,
  CRON_SECRET: env.CRON_SECRET,
  RATE_LIMIT_MAX: '1000000',
  N8N_API_URL: env.N8N_API_URL,
  N8N_API_KEY: 'bench-n8n-api-key',
  N8N_CONCURRENCY: env.N8N_CONCURRENCY,
  // The live tail would add its own n8n calls to the measured ones: off unless asked for.
  LIVE_SYNC_INTERVAL_MS: env.LIVE_SYNC_INTERVAL_MS ?? '0'
})
// The bench migrated the database already (and other sessions may be editing migration files).
const app = await buildApp({ config, logger: false, testing: { swaggerUi: false, migrate: false } })
const strategy = env.BENCH_SYNC_ALL_STRATEGY as SyncAllStrategy | undefined
if (strategy || env.BENCH_SCAN_BUFFER || env.BENCH_INGEST_LANES) {
  // Same construction as src/plugins/services.ts, plus the strategy. The routes read
  // `app.syncEngine` at request time, so replacing the decoration before listening is enough.
  const engine = new SyncEngine({
    store: app.store,
    n8n: app.n8n,
    logger: app.log.child({ component: 'sync' }),
    concurrency: config.N8N_CONCURRENCY,
    redeploy: async (scope, workflowId) => { await app.workflowService.deploy(scope, workflowId) },
    metrics: app.metrics,
    ...(strategy ? { syncAllStrategy: strategy } : {}),
    ...(env.BENCH_SCAN_BUFFER ? { scanBufferLimit: Number(env.BENCH_SCAN_BUFFER) } : {}),
    ...(env.BENCH_INGEST_LANES ? { ingestLanes: Number(env.BENCH_INGEST_LANES) } : {})
  })
  ;(app as unknown as { syncEngine: SyncEngine }).syncEngine = engine
}
// BENCH_MEM_TRACE=1: the largest heap/external/RSS seen (sampled every 50 ms), printed at stop.
let snapped = false
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
const memTimer = env.BENCH_MEM_TRACE
  ? setInterval(() => {
    const m = process.memoryUsage()
    for (const k of Object.keys(peak) as Array<keyof typeof peak>) peak[k] = Math.max(peak[k], Math.round(m[k] / 1048576))
    if (env.BENCH_HEAP_SNAPSHOT_MB && !snapped && m.heapUsed / 1048576 > Number(env.BENCH_HEAP_SNAPSHOT_MB)) {
      snapped = true
      console.error(`heap snapshot: ${writeHeapSnapshot(`${env.BENCH_HEAP_SNAPSHOT_DIR ?? '/tmp'}/sync-app-${process.pid}.heapsnapshot`)}`)
    }
  }, 50)
  : null
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0 })
process.on('message', async (m) => {
  if (m === 'stop') {
    if (memTimer) {
      clearInterval(memTimer)
      console.error(`sync-app memory peaks (MB): ${JSON.stringify(peak)}`)
    }
    await app.close()
    process.exit(0)
  }
})
