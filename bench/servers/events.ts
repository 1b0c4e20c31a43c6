// The real service for P4 (bench/events.ts): a fresh server Postgres database, migrated at boot,
// default pool and event settings. Answers { port, databaseUrl, secret } once listening, and
// { stats, streams } to 'stats'.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'

const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const name = `ws_bench_events_${randomBytes(4).toString('hex')}`
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`create database ${name}`)
await admin.end()
const url = new URL(adminUrl)
url.pathname = `/${name}`
const secret = 'bench-secret-0123456789abcdef0123456789abcdef'
const config = loadConfig({
  NODE_ENV: 'production',
  LOG_LEVEL: 'silent',
  DATABASE_URL: url.toString(),
  SUPABASE_JWT_SECRET: secret,
  RATE_LIMIT_MAX: '1000000',
  N8N_API_URL: 'http://127.0.0.1:9/api/v1'
})
const app = await buildApp({ config, logger: false, swaggerUi: false })
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, databaseUrl: url.toString(), secret })
process.on('message', async (m) => {
  if (m === 'stats') {
    process.send?.({ stats: app.events.stats, streams: app.events.streamCount })
  }
  if (m === 'stop') {
    await app.close()
    const c = new pg.Client({ connectionString: adminUrl })
    await c.connect()
    await c.query(`drop database if exists ${name} with (force)`)
    await c.end()
    process.exit(0)
  }
})
