// The service as benchmarks run it: production settings, a fresh server Postgres database that
// is dropped afterwards, and rate limits out of the way of the load generator.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'

export const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef'
const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function admin (sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

const logLevel = process.env.BENCH_APP_LOG_LEVEL || undefined

export async function startBenchApp (prefix: string, env: Record<string, string> = {}): Promise<{ app: FastifyInstance, databaseUrl: string, close(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  await admin(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const config = loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: logLevel ?? 'silent',
    DATABASE_URL: url.toString(),
    SUPABASE_JWT_SECRET: BENCH_SECRET,
    RATE_LIMIT_MAX: '1000000',
    N8N_API_URL: 'http://127.0.0.1:9/api/v1',
    LIVE_SYNC_INTERVAL_MS: '0',
    ...env
  })
  // The service's own logger settings: LOG_LEVEL=silent (unset BENCH_APP_LOG_LEVEL) is no logger
  // at all; BENCH_APP_LOG_LEVEL=info is the default of production, request lines included.
  const app = await buildApp({ config, testing: { swaggerUi: false } })
  return {
    app,
    databaseUrl: url.toString(),
    async close () {
      await app.close()
      await admin(`drop database if exists ${name} with (force)`)
    }
  }
}
