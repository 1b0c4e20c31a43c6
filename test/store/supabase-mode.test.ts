// The whole service in Supabase mode: SUPABASE_URL + SUPABASE_ANON_KEY (+ service-role key), no
// DATABASE_URL, no JWT secret. Every database call goes through supabase-js to the PostgREST
// emulation (a real Postgres behind it); tokens are verified by the project (GET /auth/v1/user);
// n8n is nock. The logs are captured: no key or token may appear in them.
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import t from 'tap'
import nock from 'nock'
import { buildApp, loggerOptions } from '../../src/app.ts'
import type { Config } from '../../src/config.ts'
import { readMigrations } from '../../src/db/migrate.ts'
import { TEST_CRON_SECRET, testConfig } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { assertProblem } from '../helpers/http.ts'
import { API, expectActivate, expectCreate, expectGet, expectUpdate, n8n, n8nWorkflow, N8N_API_KEY } from '../helpers/n8n-nock.ts'
import { startPostgrestEmulator } from '../helpers/postgrest-emulator.ts'
import { FakeN8n } from '../helpers/sync-fake-n8n.ts'
import { mintUserToken, nowSeconds, tamperSignature } from '../helpers/tokens.ts'

nock.disableNetConnect()
t.teardown(() => {
  nock.cleanAll()
  nock.enableNetConnect()
})

const tdb = await createTestDatabase('ws_sbmode')
const emu = await startPostgrestEmulator(tdb.url)
t.teardown(async () => {
  await emu.stop()
  await tdb.drop()
})

const logs: string[] = []
function capture (): Writable {
  return new Writable({ write (chunk, _enc, cb) { logs.push(String(chunk)); cb() } })
}

function supabaseConfig (extra: Record<string, string> = {}): Config {
  return testConfig({
    SUPABASE_URL: emu.url,
    SUPABASE_ANON_KEY: emu.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: emu.serviceKey,
    SUPABASE_JWT_SECRET: '',
    LOG_LEVEL: 'info',
    RATE_LIMIT_MAX: '100000',
    ...extra
  })
}

async function supabaseApp (extra: Record<string, string> = {}) {
  const config = supabaseConfig(extra)
  return await buildApp({ config, logger: { ...loggerOptions(config) as object, stream: capture() } as never })
}

const app = await supabaseApp()
t.teardown(() => app.close())

const issuer = `${emu.url}/auth/v1`
async function user (exp = nowSeconds() + 3600) {
  const id = randomUUID()
  const token = await mintUserToken({ sub: id, iss: issuer, exp })
  return { id, token, auth: { authorization: `Bearer ${token}` } }
}
const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook' }
const tokensSeen: string[] = []

t.test('boots in Supabase mode and says so', async (t) => {
  t.equal(app.store.kind, 'supabase')
  t.notOk(app.hasDecorator('db') && (app as unknown as { db?: unknown }).db, 'no Postgres handle in this mode')
  const text = logs.join('')
  t.match(text, /Supabase mode: SUPABASE_URL and SUPABASE_ANON_KEY are set and DATABASE_URL is not/)
  t.match(text, new RegExp(`"schema_version":"${(await readMigrations()).at(-1)!.version}"`))
  t.match(text, /user reads go with the caller's token; deploy outcomes, sync results, idempotency records and locks are recorded with SUPABASE_SERVICE_ROLE_KEY/)
  t.notMatch(text, /SUPABASE_SERVICE_ROLE_KEY is not set/, 'no warning: the service-role key is set')
  t.match(text, /HS256 tokens are verified by Supabase Auth/)
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  // n8n is not answering in this file: the database decides the code, n8n makes it `degraded`
  t.match(ready.json(), { status: 'degraded', database: { ok: true, status: 'up', kind: 'supabase' }, n8n: { status: 'down' }, events: { status: 'off' } })
})

t.test('workflow routes through supabase-js, under the caller\'s token', async (t) => {
  const a = await user()
  const b = await user()
  tokensSeen.push(a.token, b.token)
  const before = emu.requests.length
  const created = expectCreate('sb-n8n-1')
  const res = await app.inject({ method: 'POST', url: '/workflows', headers: { ...a.auth, 'idempotency-key': 'sb-key-1' }, payload: { name: 'via supabase', nodes: [trigger] } })
  t.equal(res.statusCode, 201, res.body)
  const w = res.json()
  t.match(w, { user_id: a.id, name: 'via supabase', status: 'deployed', n8n_workflow_id: 'sb-n8n-1', version: 1 })
  t.ok(created.scope.isDone())
  t.equal(created.bodies[0]?.name, `[USR-${a.id.replace(/-/g, '').slice(0, 8)}] via supabase`)
  const replay = await app.inject({ method: 'POST', url: '/workflows', headers: { ...a.auth, 'idempotency-key': 'sb-key-1' }, payload: { name: 'via supabase', nodes: [trigger] } })
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.json(), w, 'the stored answer')
  assertProblem(t, await app.inject({ method: 'POST', url: '/workflows', headers: { ...a.auth, 'idempotency-key': 'sb-key-1' }, payload: { name: 'other body' } }), 409, 'conflict')

  const got = await app.inject({ method: 'GET', url: `/workflows/${w.id}`, headers: a.auth })
  t.equal(got.statusCode, 200)
  t.same(got.json(), w)
  assertProblem(t, await app.inject({ method: 'GET', url: `/workflows/${w.id}`, headers: b.auth }), 404, 'not_found')
  const list = await app.inject({ method: 'GET', url: '/workflows?limit=10', headers: a.auth })
  t.same(list.json().data.map((x: { id: string }) => x.id), [w.id])
  t.same((await app.inject({ method: 'GET', url: '/workflows', headers: b.auth })).json().data, [])

  assertProblem(t, await app.inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...a.auth, 'if-match': '"7"' }, payload: { name: 'stale' } }), 412, 'precondition_failed')
  const upd = expectUpdate('sb-n8n-1')
  const patched = await app.inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...a.auth, 'if-match': '"1"' }, payload: { name: 'renamed' } })
  t.equal(patched.statusCode, 200, patched.body)
  t.match(patched.json(), { name: 'renamed', version: 2, status: 'deployed' })
  t.ok(upd.scope.isDone())

  const act = expectActivate('sb-n8n-1')
  const activated = await app.inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: a.auth })
  t.equal(activated.statusCode, 200, activated.body)
  t.match(activated.json(), { active: true, version: 3 })
  t.ok(act.isDone())

  expectGet('sb-n8n-1')
  const del = n8n().delete(`${API}/workflows/sb-n8n-1`).reply(200, n8nWorkflow('sb-n8n-1'))
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: b.auth }), 404, 'not_found')
  t.equal((await app.inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: a.auth })).statusCode, 204)
  t.ok(del.isDone())
  t.equal((await tdb.db.query('select 1 from public.mvp_workflows where id = $1', [w.id])).rows.length, 0)

  const mine = emu.requests.slice(before).filter((r) => r.path.startsWith('/rest/v1/'))
  t.ok(mine.length > 10)
  // The trust model: reads (and a user's delete of their own row) go with the caller's token;
  // what the service records goes with its key, to the write functions only service_role may run.
  const asUser = mine.filter((r) => r.role === 'authenticated')
  const asService = mine.filter((r) => r.role === 'service_role')
  t.equal(asUser.length + asService.length, mine.length, 'every request is the caller\'s or the service\'s')
  t.ok(asUser.length > 5 && asService.length > 5, `${asUser.length} user requests, ${asService.length} service writes`)
  t.ok(asUser.every((r) => r.apikey === emu.anonKey && r.authorization === `Bearer ${r.sub === a.id ? a.token : b.token}`), 'each user request carries its caller\'s token')
  t.ok(asUser.every((r) => r.method === 'GET' || r.method === 'DELETE' || ['/rest/v1/rpc/list_sync_targets', '/rest/v1/rpc/workflows_with_open_rows', '/rest/v1/rpc/sync_log_stats'].includes(r.path)), 'users only read (and delete their own rows)')
  t.ok(asService.every((r) => r.apikey === emu.serviceKey && r.method === 'POST' && r.path.startsWith('/rest/v1/rpc/')), 'the service records through its write functions')
  t.ok(asService.every((r) => { const u = (r.body as { p_user_id?: unknown } | null)?.p_user_id; return u === undefined || u === a.id }), 'acting for the caller (A), never for B')
})

t.test('auth: verified by Supabase Auth (no secret configured), cached until exp', async (t) => {
  const u = await user()
  tokensSeen.push(u.token)
  const calls = emu.authUserCalls
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/me', headers: u.auth })).statusCode, 200)
  t.equal(emu.authUserCalls - calls, 1, 'one GET /auth/v1/user for three requests with the same token')
  const me = (await app.inject({ method: 'GET', url: '/me', headers: u.auth })).json()
  t.equal(me.user_id, u.id)
  const expired = await user(nowSeconds() - 30)
  const before = emu.authUserCalls
  assertProblem(t, await app.inject({ method: 'GET', url: '/me', headers: expired.auth }), 401, 'token_expired')
  t.equal(emu.authUserCalls, before, 'an expired token is refused without asking')
  const forged = tamperSignature((await user()).token)
  const r = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${forged}` } })
  assertProblem(t, r, 401, 'invalid_token')
  t.match(String(r.headers['www-authenticate']), /^Bearer/)
  t.equal(emu.authUserCalls, before + 1, 'a token Supabase refuses: asked once')
  assertProblem(t, await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${forged}` } }), 401, 'invalid_token')
  t.equal(emu.authUserCalls, before + 2, 'failures are not cached')
})

t.test('GET /events answers 503 in Supabase mode, pointing at Supabase Realtime', async (t) => {
  const u = await user()
  const res = await app.inject({ method: 'GET', url: '/events', headers: u.auth })
  const body = assertProblem(t, res, 503, 'database_unavailable')
  t.match(String(body.detail), /Supabase Realtime.*postgres_changes/)
})

t.test('sync and cron routes through supabase-js (service role for cron)', async (t) => {
  // (no nock.cleanAll() here: it would also remove the Supabase emulation's interceptors)
  const fake = new FakeN8n()
  const fakeScope = fake.intercept()
  t.teardown(() => { fakeScope.persist(false) })
  const u = await user()
  const n8nId = `sbwf-${randomUUID().slice(0, 8)}`
  fake.addWorkflow(n8nId, `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] synced`, false)
  const wf = (await tdb.db.query<{ id: string }>("insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, 'synced', 'deployed', $2) returning id", [u.id, n8nId])).rows[0]!.id
  fake.workflows.get(n8nId)!.staticData = { workflow_sync: { row_id: wf, user_id: u.id } }
  fake.runMany(n8nId, 3, (i) => (i === 1 ? 'error' : 'success'))
  const sync = await app.inject({ method: 'POST', url: '/sync', headers: u.auth, payload: {} })
  t.equal(sync.statusCode, 200, sync.body)
  t.match(sync.json(), { status: 'success', workflows_synced: 1, workflows_failed: 0, executions_ingested: 3 })
  const row = (await app.inject({ method: 'GET', url: `/workflows/${wf}`, headers: u.auth })).json()
  t.match(row, { execution_count: 3, successful_executions: 2, failed_executions: 1 })
  const execs = await app.inject({ method: 'GET', url: `/workflows/${wf}/executions?limit=2`, headers: u.auth })
  t.equal(execs.statusCode, 200, execs.body)
  t.equal(execs.json().data.length, 2)
  t.type(execs.json().next_cursor, 'string')
  const logsRes = await app.inject({ method: 'GET', url: '/sync/logs', headers: u.auth })
  t.equal(logsRes.json().data[0]?.id, sync.json().sync_log_id)
  const stats = await app.inject({ method: 'GET', url: '/sync/stats?hours=1', headers: u.auth })
  t.match(stats.json(), { total: 1, success_rate: 1 })

  const before = emu.requests.length
  const all = await app.inject({ method: 'POST', url: '/sync/all', headers: { authorization: `Bearer ${TEST_CRON_SECRET}` } })
  t.equal(all.statusCode, 200, all.body)
  t.equal(all.json().status, 'success')
  const cron = emu.requests.slice(before).filter((r) => r.path.startsWith('/rest/v1/'))
  t.ok(cron.length > 0 && cron.every((r) => r.apikey === emu.serviceKey && r.role === 'service_role'), 'cron work goes with the service-role key')
  t.equal((await app.inject({ method: 'GET', url: '/sync/logs', headers: { authorization: `Bearer ${TEST_CRON_SECRET}` } })).statusCode, 200)
  const clean = await app.inject({ method: 'POST', url: '/cleanup', headers: { authorization: `Bearer ${TEST_CRON_SECRET}` }, payload: { dry_run: true } })
  t.equal(clean.statusCode, 200, clean.body)
  t.match(clean.json(), { dry_run: true, status: 'success' })
})

t.test('without SUPABASE_SERVICE_ROLE_KEY: boot says so; cron routes answer 503, user routes work', async (t) => {
  const from = logs.length
  const noKey = await supabaseApp({ SUPABASE_SERVICE_ROLE_KEY: '' })
  t.teardown(() => noKey.close())
  t.match(logs.slice(from).join(''), /SUPABASE_SERVICE_ROLE_KEY is not set: the cron routes \(POST \/sync\/all, POST \/cleanup/)
  const cron = { authorization: `Bearer ${TEST_CRON_SECRET}` }
  for (const [method, url] of [['POST', '/sync/all'], ['POST', '/cleanup'], ['GET', '/sync/logs']] as const) {
    const res = await noKey.inject({ method, url, headers: cron, ...(method === 'POST' ? { payload: {} } : {}) })
    const body = assertProblem(t, res, 503, 'database_unavailable')
    t.match(String(body.detail), /SUPABASE_SERVICE_ROLE_KEY/)
  }
  const u = await user()
  t.equal((await noKey.inject({ method: 'GET', url: '/workflows', headers: u.auth })).statusCode, 200)
  t.match(logs.slice(from).join(''), /without SUPABASE_SERVICE_ROLE_KEY, user writes, syncs and cron routes answer 503/)
  // what the service would record needs its key: a clear 503, and nothing is written
  const created = assertProblem(t, await noKey.inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'needs the key', nodes: [trigger], connections: {} } }), 503, 'database_unavailable')
  t.match(String(created.detail), /SUPABASE_SERVICE_ROLE_KEY is not set: reads work, writes and syncs need it/)
  const synced = assertProblem(t, await noKey.inject({ method: 'POST', url: '/sync', headers: u.auth, payload: {} }), 503, 'database_unavailable')
  t.match(String(synced.detail), /SUPABASE_SERVICE_ROLE_KEY/)
  t.equal((await tdb.db.query('select 1 from public.mvp_workflows where user_id = $1', [u.id])).rows.length, 0, 'nothing was written')
})

t.test('no key or token ever reached the logs or an answer', async (t) => {
  const text = logs.join('')
  t.ok(text.length > 1000, `${logs.length} log lines`)
  for (const secret of [emu.anonKey, emu.serviceKey, TEST_CRON_SECRET, N8N_API_KEY, ...tokensSeen]) {
    t.notOk(text.includes(secret), 'absent from the logs')
  }
})
