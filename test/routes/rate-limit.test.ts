import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { buildTestApp, testUser } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'

t.test('per-user limits: 429 problem with Retry-After; other users and presets are separate', async (t) => {
  const h = await buildTestApp({ env: { RATE_LIMIT_MAX: '10' } })
  t.teardown(() => h.close())
  const a = await testUser()
  const b = await testUser()
  t.same(h.app.rateLimits, { read: 10, write: 2, sync: 1 }, 'writes get a fifth, /sync a sixtieth (at least 1)')
  for (let i = 0; i < 10; i++) {
    const ok = await h.app.inject({ method: 'GET', url: '/me', headers: a.auth })
    t.equal(ok.statusCode, 200)
    t.equal(ok.headers['x-ratelimit-limit'], '10')
  }
  const limited = await h.app.inject({ method: 'GET', url: '/me', headers: a.auth })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['content-type'], 'application/problem+json')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After in seconds')
  const body = limited.json()
  t.equal(body.code, 'rate_limited')
  t.equal(body.status, 429)
  t.type(body.requestId, 'string')
  const other = await h.app.inject({ method: 'GET', url: '/me', headers: b.auth })
  t.equal(other.statusCode, 200, 'another user has a budget of their own')
  // the stricter write preset: 2 per minute on POST /workflows (validation failures still count)
  for (let i = 0; i < 2; i++) {
    const r = await h.app.inject({ method: 'POST', url: '/workflows', headers: b.auth, payload: {} })
    t.equal(r.statusCode, 400)
  }
  const w = await h.app.inject({ method: 'POST', url: '/workflows', headers: b.auth, payload: {} })
  t.equal(w.statusCode, 429, 'writes hit their preset first')
  t.equal(h.app.rateLimitedCount(), 2)
})

t.test('anonymous callers are limited by address', async (t) => {
  const h = await buildTestApp({ env: { RATE_LIMIT_MAX: '3' } })
  t.teardown(() => h.close())
  const codes: number[] = []
  for (let i = 0; i < 4; i++) codes.push((await h.app.inject({ method: 'GET', url: '/workflows', remoteAddress: '10.0.0.7' })).statusCode)
  t.same(codes, [401, 401, 401, 401], 'auth runs first: a missing token is 401')
  const sync: number[] = []
  for (let i = 0; i < 3; i++) sync.push((await h.app.inject({ method: 'GET', url: '/sync/stats', remoteAddress: '10.0.0.8' })).statusCode)
  t.same(sync, [401, 401, 401])
})

t.test('REDIS_URL: replicas share one budget', async (t) => {
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    await redis.ping()
  } catch {
    t.fail('Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it)')
    return
  }
  redis.disconnect()
  const tdb = await createTestDatabase()
  t.teardown(() => tdb.drop())
  // a fresh namespace per run through a unique user id
  const env = { RATE_LIMIT_MAX: '4', REDIS_URL: 'redis://127.0.0.1:6379' }
  const one = await buildTestApp({ env, db: tdb.db })
  const two = await buildTestApp({ env, db: tdb.db })
  t.teardown(async () => { await one.close(); await two.close() })
  const u = await testUser(`${randomBytes(4).toString('hex')}-0000-4000-8000-000000000000`)
  const codes: number[] = []
  for (let i = 0; i < 6; i++) {
    const app = i % 2 === 0 ? one.app : two.app
    codes.push((await app.inject({ method: 'GET', url: '/me', headers: u.auth })).statusCode)
  }
  t.same(codes, [200, 200, 200, 200, 429, 429], 'the fifth request, on either replica, is over the shared limit')
})
