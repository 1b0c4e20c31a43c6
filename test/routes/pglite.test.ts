// The embedded default: PGlite in memory, the same migrations and the same RLS, through the routes.
import t from 'tap'
import { PgliteDatabase } from '../../src/db/pglite-database.ts'
import { testUser } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { API, expectCreate, expectGet, expectUpdate, n8n, n8nWorkflow } from '../helpers/n8n-nock.ts'

const db = await PgliteDatabase.open(undefined)
const { h, inject, unmatched } = await nockedTestApp(t, { db, migrate: true, cleanNockAfterEach: false })
t.teardown(() => db.close())

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook' }

t.test('boots on PGlite with the migrations applied', async (t) => {
  t.equal(h.app.db.kind, 'pglite')
  const applied = await db.query<{ version: string }>('select version from workflow_sync.schema_migrations order by version')
  t.ok(applied.rows.length >= 1)
  t.ok(applied.rows.some((r) => r.version === '20250108000000'))
  const rls = await db.query<{ relname: string, relrowsecurity: boolean }>(
    'select relname, relrowsecurity from pg_class where relname in (\'mvp_workflows\', \'sync_logs\', \'workflow_executions\') order by relname')
  t.same(rls.rows.map((r) => r.relrowsecurity), [true, true, true], 'RLS enabled')
})

t.test('create, list, get, patch, delete', async (t) => {
  const u = await testUser()
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const c = expectCreate(`pg-lite-${i}`)
    const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: `lite ${i}`, nodes: [trigger] } })
    t.equal(res.statusCode, 201, res.body)
    t.match(res.json(), { status: 'deployed', n8n_workflow_id: `pg-lite-${i}`, user_id: u.id })
    t.ok(c.scope.isDone())
    t.equal(c.bodies[0]!.name, `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] lite ${i}`)
    ids.push(res.json().id)
  }
  // Keyset pagination across pages.
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const url: string = `/workflows?limit=2${cursor ? `&cursor=${cursor}` : ''}`
    const page = (await inject({ method: 'GET', url, headers: u.auth })).json() as { data: Array<{ id: string }>, next_cursor: string | null }
    seen.push(...page.data.map((w) => w.id))
    cursor = page.next_cursor
  } while (cursor)
  t.same(seen, [...ids].reverse(), 'newest first, each once')

  const got = await inject({ method: 'GET', url: `/workflows/${ids[0]}`, headers: u.auth })
  t.equal(got.statusCode, 200)
  const up = expectUpdate('pg-lite-0')
  const patched = await inject({ method: 'PATCH', url: `/workflows/${ids[0]}`, headers: { ...u.auth, 'if-match': '"1"' }, payload: { name: 'lite renamed' } })
  t.equal(patched.statusCode, 200, patched.body)
  t.match(patched.json(), { name: 'lite renamed', version: 2 })
  t.ok(up.scope.isDone())
  assertProblem(t, await inject({ method: 'PATCH', url: `/workflows/${ids[0]}`, headers: { ...u.auth, 'if-match': '"1"' }, payload: { name: 'stale' } }), 412, 'precondition_failed')

  // Another user sees none of it.
  const other = await testUser()
  assertProblem(t, await inject({ method: 'GET', url: `/workflows/${ids[0]}`, headers: other.auth }), 404, 'not_found')
  t.same((await inject({ method: 'GET', url: '/workflows', headers: other.auth })).json().data, [])
  await db.withUser({ sub: other.id, role: 'authenticated' }, async (tx) => {
    t.equal((await tx.query('select * from public.mvp_workflows')).rows.length, 0, 'RLS in PGlite too')
    t.equal((await tx.query('delete from public.mvp_workflows where user_id = $1', [u.id])).rowCount, 0)
  })

  expectGet('pg-lite-0')
  const del = n8n().delete(`${API}/workflows/pg-lite-0`).reply(200, n8nWorkflow('pg-lite-0'))
  const res = await inject({ method: 'DELETE', url: `/workflows/${ids[0]}`, headers: u.auth })
  t.equal(res.statusCode, 204, res.body)
  t.ok(del.isDone())
  assertProblem(t, await inject({ method: 'GET', url: `/workflows/${ids[0]}`, headers: u.auth }), 404, 'not_found')
  t.equal((await inject({ method: 'GET', url: '/workflows', headers: u.auth })).json().data.length, 2)
})

t.test('Idempotency-Key on PGlite: one n8n create', async (t) => {
  const u = await testUser()
  const c = expectCreate('pg-lite-idem')
  const before = unmatched.requests.length
  const first = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'idempotency-key': 'k' }, payload: { name: 'idem', nodes: [trigger] } })
  const second = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'idempotency-key': 'k' }, payload: { name: 'idem', nodes: [trigger] } })
  t.equal(first.statusCode, 201)
  t.equal(second.headers['idempotent-replayed'], 'true')
  t.same(second.json(), first.json())
  t.ok(c.scope.isDone())
  t.equal(unmatched.requests.length, before)
})

t.test('no unexpected n8n call', async (t) => {
  t.same(unmatched.requests, [])
})
