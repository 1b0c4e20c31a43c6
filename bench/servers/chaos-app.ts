// The real service for bench/chaos.ts, in its own process (so that it can be SIGKILLed and its
// RSS measured): buildApp in production mode on CHAOS_DATABASE_URL (migrated by the script), n8n
// at the simulator, optional Redis; sends {port, pid} once listening. Everything else is the
// ordinary configuration, defaults included (timeouts, pool, backoff).
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'

const env = process.env
const config = loadConfig({
  NODE_ENV: 'production',
  LOG_LEVEL: env.CHAOS_LOG_LEVEL ?? 'silent',
  DATABASE_URL: env.CHAOS_DATABASE_URL,
  DATABASE_POOL_MAX: env.DATABASE_POOL_MAX ?? '20',
  SUPABASE_JWT_SECRET: env.CHAOS_JWT_SECRET,
  CRON_SECRET: env.CRON_SECRET,
  RATE_LIMIT_MAX: env.RATE_LIMIT_MAX ?? '1000000',
  REDIS_URL: env.REDIS_URL,
  N8N_API_URL: env.N8N_API_URL,
  N8N_API_KEY: 'chaos-n8n-api-key',
  N8N_TIMEOUT_MS: env.N8N_TIMEOUT_MS ?? '1000',
  N8N_RETRIES: env.N8N_RETRIES ?? '3',
  CLEANUP_GRACE_MINUTES: '0',
  // The simulated executions are dated 2025-01-01 onwards: with the 90-day default, the live
  // tail's first scheduled cleanup (due at once on a fresh deployment) would purge the ledger rows
  // a scenario is about to compare with n8n's truth (retention, not loss).
  EXECUTION_RETENTION_DAYS: env.EXECUTION_RETENTION_DAYS ?? '3650'
})
const app = await buildApp({ config, logger: env.CHAOS_LOG_LEVEL ? undefined : false, testing: { swaggerUi: false, migrate: false } })
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, pid: process.pid })
process.on('message', (m) => {
  if (m === 'stop') void app.close().then(() => process.exit(0), () => process.exit(1))
})
