import { Writable } from 'node:stream'
import t from 'tap'
import nock from 'nock'
import { loggerOptions } from '../src/app.ts'
import { buildTestApp, N8N_TEST_ORIGIN, testConfig, testUser, TEST_CRON_SECRET } from './helpers/app.ts'

t.test('logs carry request ids and never a token, cron secret or n8n key', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const config = testConfig({ LOG_LEVEL: 'debug' })
  const h = await buildTestApp({ env: { LOG_LEVEL: 'debug' }, logger: { ...(loggerOptions(config) as object), stream } })
  t.teardown(() => h.close())
  t.teardown(() => nock.cleanAll())
  const u = await testUser()
  nock(N8N_TEST_ORIGIN).post('/api/v1/workflows').reply(500, { message: 'boom' })
  const res = await h.app.inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'idempotency-key': 'k-1' }, payload: { name: 'x' } })
  t.equal(res.statusCode, 201)
  await h.app.inject({ method: 'GET', url: '/me', headers: { authorization: 'Bearer not-a-token' } })
  await h.app.inject({ method: 'POST', url: '/cleanup', headers: { authorization: `Bearer ${TEST_CRON_SECRET}` }, payload: { dry_run: true } })
  const all = lines.join('')
  t.ok(lines.length > 5, 'something was logged')
  t.ok(all.includes(res.headers['x-request-id'] as string), 'log lines carry the request id')
  for (const secret of [u.token, 'not-a-token', TEST_CRON_SECRET, 'n8n-test-api-key-should-never-leak', config.SUPABASE_JWT_SECRET!]) {
    t.notOk(all.includes(secret), `no log line contains ${secret.slice(0, 12)}…`)
  }
})

t.test('at info, one line per request: method, URL, status, time and request id; the incoming line at debug', async (t) => {
  for (const level of ['info', 'debug'] as const) {
    const lines: string[] = []
    const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
    const config = testConfig({ LOG_LEVEL: level })
    const h = await buildTestApp({ env: { LOG_LEVEL: level }, logger: { ...(loggerOptions(config) as object), stream } })
    const u = await testUser()
    const res = await h.app.inject({ method: 'GET', url: '/me?x=1', headers: u.auth })
    t.equal(res.statusCode, 200)
    await h.close()
    const id = res.headers['x-request-id'] as string
    const mine = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((l) => l.reqId === id)
    const completed = mine.filter((l) => l.msg === 'request completed')
    t.equal(completed.length, 1, `${level}: one completed line`)
    t.match(completed[0], { level: 30, req: { method: 'GET', url: '/me?x=1' }, res: { statusCode: 200 } })
    t.type(completed[0]?.responseTime, 'number')
    t.notOk(JSON.stringify(mine).includes(u.token), 'no token')
    const incoming = mine.filter((l) => l.msg === 'incoming request')
    if (level === 'info') {
      t.same(mine.map((l) => l.msg), ['request completed'], 'info: nothing else for this request')
    } else {
      t.equal(incoming.length, 1, 'debug: the incoming line too')
      t.equal(incoming[0]?.level, 20)
      t.equal(incoming[0]?.req?.url, '/me?x=1')
    }
  }
})

t.test('LOG_LEVEL=silent is no logger at all (a request pays for no child logger); other levels have one', async (t) => {
  t.equal(loggerOptions(testConfig({ LOG_LEVEL: 'silent' })), false)
  const silent = await buildTestApp({ env: { LOG_LEVEL: 'silent' }, logger: loggerOptions(testConfig({ LOG_LEVEL: 'silent' })) })
  t.teardown(() => silent.close())
  t.equal(silent.app.log.child({ reqId: 'x' }), silent.app.log, 'the null logger: its children are itself')
  const u = await testUser()
  t.equal((await silent.app.inject({ method: 'GET', url: '/me', headers: u.auth })).statusCode, 200)
  const info = loggerOptions(testConfig({ LOG_LEVEL: 'info' })) as { level: string }
  t.equal(info.level, 'info')
})
