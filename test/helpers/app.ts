// The one way tests build the app: real Postgres (a fresh database per call), injected config,
// n8n at a fake address that nock intercepts, tokens minted with the test secret.
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { buildApp } from '../../src/app.ts'
import type { AppTestSeams } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import type { Config } from '../../src/config.ts'
import type { Database } from '../../src/db/database.ts'
import { createTestDatabase } from './db.ts'
import type { TestDatabase } from './db.ts'
import { mintUserToken, randomUserId, TEST_JWT_SECRET } from './tokens.ts'

export const N8N_TEST_URL = 'http://n8n.test/api/v1'
export const N8N_TEST_ORIGIN = 'http://n8n.test'
export const TEST_CRON_SECRET = 'cron-secret-for-tests-0123456789abcdef'

export function testConfig (env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    N8N_API_URL: N8N_TEST_URL,
    N8N_API_KEY: 'n8n-test-api-key-should-never-leak',
    N8N_TIMEOUT_MS: '500',
    N8N_RETRIES: '1',
    CRON_SECRET: TEST_CRON_SECRET,
    // The live tail is off unless a test turns it on (its ticks would add n8n calls to every test).
    LIVE_SYNC_INTERVAL_MS: '0',
    ...env
  })
}

export interface TestApp {
  app: FastifyInstance
  db: Database
  tdb?: TestDatabase
  config: Config
  close(): Promise<void>
}

/**
 * The app on a fresh test database (or on `db`, then not migrated again), with the config from
 * `env` over testConfig; the seams (n8n, token verifier, Redis, the deploy's crash hook...) ride
 * in the app's `testing` options, never in what production passes.
 */
export async function buildTestApp (opts: { env?: Record<string, string | undefined>, logger?: FastifyServerOptions['logger'] | boolean } & AppTestSeams = {}): Promise<TestApp> {
  const { env, logger = false, db: givenDb, ...seams } = opts
  const config = testConfig(env)
  const tdb = givenDb ? undefined : await createTestDatabase()
  const db = givenDb ?? tdb!.db
  const app = await buildApp({ config, logger, testing: { db, migrate: !givenDb, ...seams } })
  return {
    app,
    db,
    ...(tdb ? { tdb } : {}),
    config,
    async close () {
      await app.close()
      if (tdb) await tdb.drop()
    }
  }
}

export interface TestUser {
  id: string
  token: string
  auth: { authorization: string }
}

export async function testUser (id: string = randomUserId(), email = `${id.slice(0, 8)}@example.com`): Promise<TestUser> {
  const token = await mintUserToken({ secret: TEST_JWT_SECRET, sub: id, email })
  return { id, token, auth: { authorization: `Bearer ${token}` } }
}

export const cronAuth = { authorization: `Bearer ${TEST_CRON_SECRET}` }
