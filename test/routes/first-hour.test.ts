// Issue 11, item 9: one timestamp precision, 405 with Allow, TRUST_PROXY, a Supabase surprise as 502.
import t from 'tap'
import Fastify from 'fastify'
import { testUser, testConfig } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { expectCreate } from '../helpers/n8n-nock.ts'
import { serverOptions } from '../../src/app.ts'
import { loadConfig, ConfigError } from '../../src/config.ts'
import { microseconds, parseTimestamptz } from '../../src/db/database.ts'
import errorsPlugin from '../../src/plugins/errors.ts'
import configPlugin from '../../src/plugins/config.ts'
import { SupabaseError } from '../../src/db/errors.ts'

const { inject } = await nockedTestApp(t)
const ISO6 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

t.test('timestamps: always six fractional digits (microseconds), UTC', async (t) => {
  t.equal(parseTimestamptz('2025-01-08 10:00:00.5+00'), '2025-01-08T10:00:00.500000Z')
  t.equal(parseTimestamptz('2025-01-08 10:00:00+00'), '2025-01-08T10:00:00.000000Z')
  t.equal(parseTimestamptz('2025-01-08 10:00:00.123456+00'), '2025-01-08T10:00:00.123456Z')
  t.equal(parseTimestamptz('2025-01-08 12:00:00.25+02'), '2025-01-08T10:00:00.250000Z')
  t.equal(microseconds('2025-01-08T10:00:00.123Z'), '2025-01-08T10:00:00.123000Z')
  const u = await testUser()
  expectCreate('ts-1')
  const w = (await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'ts' } })).json()
  t.match(w.created_at, ISO6)
  t.match(w.updated_at, ISO6)
  const list = (await inject({ method: 'GET', url: '/workflows', headers: u.auth })).json()
  t.match(list.data[0].created_at, ISO6)
  const sync = await inject({ method: 'POST', url: '/sync', headers: u.auth, payload: { workflow_ids: [w.id] } })
  t.equal(sync.statusCode, 200)
  const logs = (await inject({ method: 'GET', url: '/sync/logs', headers: u.auth })).json()
  t.ok(logs.data.length > 0)
  t.match(logs.data[0].created_at, ISO6)
})

t.test('a known path with another method: 405 problem with Allow', async (t) => {
  const u = await testUser()
  const res = await inject({ method: 'PUT', url: '/workflows/00000000-0000-4000-8000-000000000001', headers: u.auth, payload: {} })
  assertProblem(t, res, 405, 'method_not_allowed')
  t.equal(res.headers.allow, 'DELETE, GET, HEAD, PATCH')
  const sync = await inject({ method: 'GET', url: '/sync' })
  assertProblem(t, sync, 405, 'method_not_allowed')
  t.equal(sync.headers.allow, 'POST')
  const list = await inject({ method: 'DELETE', url: '/workflows?limit=1' })
  t.equal(list.headers.allow, 'GET, HEAD, POST')
  assertProblem(t, await inject({ method: 'GET', url: '/no-such-path' }), 404, 'not_found')
})

t.test('TRUST_PROXY: off by default; true, a hop count or addresses', async (t) => {
  t.equal(testConfig().trustProxy, false)
  t.equal(serverOptions(testConfig()).trustProxy, false)
  t.equal(testConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(testConfig({ TRUST_PROXY: '1' }).trustProxy, 1)
  t.same(testConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1'])
  t.throws(() => loadConfig({ TRUST_PROXY: 'yes please' }), ConfigError)
  // What it changes: whether X-Forwarded-For moves request.ip (the anonymous rate-limit key).
  const ipWith = async (env: Record<string, string>): Promise<string> => {
    const app = Fastify(serverOptions(testConfig(env), false))
    app.get('/ip', async (request) => ({ ip: request.ip }))
    const res = await app.inject({ method: 'GET', url: '/ip', headers: { 'x-forwarded-for': '203.0.113.9' } })
    await app.close()
    return res.json().ip
  }
  t.equal(await ipWith({}), '127.0.0.1', 'default: a client-chosen X-Forwarded-For is ignored')
  t.equal(await ipWith({ TRUST_PROXY: 'true' }), '203.0.113.9')
  t.equal(await ipWith({ TRUST_PROXY: '1' }), '203.0.113.9')
  t.equal(await ipWith({ TRUST_PROXY: '127.0.0.1' }), '203.0.113.9')
  t.equal(await ipWith({ TRUST_PROXY: '10.0.0.1' }), '127.0.0.1', 'a proxy that is not the peer is not trusted')
})

t.test('an unexpected answer from the Supabase Data API is a 502 problem, not a 500', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(configPlugin, { config: testConfig() })
  await app.register(errorsPlugin)
  app.get('/x', async () => { throw new SupabaseError({ error: { code: 'XX000', message: 'internal details', details: null, hint: null }, status: 500 }) })
  const res = await app.inject({ method: 'GET', url: '/x' })
  t.equal(res.statusCode, 502)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { code: 'database_error', status: 502, detail: /Supabase Data API answered unexpectedly \(HTTP 500, code XX000\)/ })
  t.notMatch(res.body, /internal details/, 'its message stays in the logs')
  await app.close()
})
