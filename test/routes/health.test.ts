import t from 'tap'
import nock from 'nock'
import { buildTestApp, N8N_TEST_ORIGIN } from '../helpers/app.ts'
import { adminQuery } from '../helpers/db.ts'

/** The database disappears under a running app (its pool stays open and finds it gone). */
const dropUnderTheApp = (name: string): Promise<void> => adminQuery(`drop database if exists ${name} with (force)`)

t.test('/health and /ready', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => nock.cleanAll())
  const health = await h.app.inject({ method: 'GET', url: '/health' })
  t.same(health.json(), { status: 'ok' })
  nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).reply(200, { data: [], nextCursor: null })
  const ready = await h.app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', database: { ok: true, status: 'up', kind: 'pg' }, n8n: { reachable: true, status: 'up' }, events: { status: 'listening', streams: 0 } })
  nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).reply(401, { message: 'unauthorized' })
  const n8nDown = await h.app.inject({ method: 'GET', url: '/ready' })
  t.equal(n8nDown.statusCode, 200, 'n8n is reported, the database decides')
  t.equal(n8nDown.json().n8n.reachable, false)
  t.match(n8nDown.json(), { status: 'degraded', database: { ok: true, status: 'up' }, n8n: { status: 'down', latency_ms: null } }, 'n8n down: degraded, each part named')
  // the database goes away: /ready says so with 503, /health still answers
  await dropUnderTheApp(h.tdb!.name)
  nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).reply(200, { data: [], nextCursor: null })
  const down = await h.app.inject({ method: 'GET', url: '/ready' })
  t.equal(down.statusCode, 503)
  t.match(down.json(), { status: 'unavailable', database: { ok: false, status: 'down', latency_ms: null }, n8n: { status: 'up' } }, 'database down: unavailable, n8n still reported up')
  t.equal((await h.app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  await h.close()
})

t.test('a database that is down answers 503 database_unavailable on data routes', async (t) => {
  const h = await buildTestApp()
  const { testUser } = await import('../helpers/app.ts')
  const u = await testUser()
  await dropUnderTheApp(h.tdb!.name)
  const res = await h.app.inject({ method: 'GET', url: '/workflows', headers: u.auth })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'database_unavailable')
  t.notMatch(res.body, /ws_test_|select |postgres/i, 'no database internals in the answer')
  await h.close()
})

t.test('Swagger UI is served at /docs and the spec at /openapi.json', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  const docs = await h.app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  const spec = await h.app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(spec.statusCode, 200)
  t.ok(spec.json().components.securitySchemes.bearerAuth, 'the Authorize button has a bearer scheme')
})
