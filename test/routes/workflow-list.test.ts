// GET /workflows answers summaries unless include=definition; GET /workflows and GET /workflows/{id}
// carry an ETag of the answer and honour If-None-Match with 304. Real Postgres; rows seeded as the
// owner (no n8n needed), counts moved as a sync would move them.
import t from 'tap'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, assertValidation } from '../helpers/http.ts'
import { parseVersion } from '../../src/services/workflow-service.ts'

const ta = await buildTestApp({ env: { RATE_LIMIT_MAX: '100000' } })
t.teardown(() => ta.close())
const { app, db } = ta

const DEFINITION = ['nodes', 'connections', 'settings']

async function seed (u: TestUser, i: number): Promise<string> {
  const nodes = [{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: `p${i}`, httpMethod: 'POST' } }]
  const r = await db.query<{ id: string }>(
    `insert into public.mvp_workflows (user_id, name, nodes, connections, settings, status, n8n_workflow_id)
     values ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, 'deployed', $6) returning id`,
    [u.id, `workflow ${i}`, JSON.stringify(nodes), JSON.stringify({ Webhook: { main: [[]] } }), JSON.stringify({ executionOrder: 'v1' }), `n8n-${i}`])
  return r.rows[0]!.id
}

const a = await testUser()
const b = await testUser()
const ids: string[] = []
for (let i = 0; i < 3; i++) ids.push(await seed(a, i))
await seed(b, 9)

const get = (u: TestUser, url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers: { ...u.auth, ...headers } })

t.test('GET /workflows: summaries by default, the definition with include=definition', async (t) => {
  const summary = await get(a, '/workflows')
  t.equal(summary.statusCode, 200, summary.body)
  const full = await get(a, '/workflows?include=definition')
  t.equal(full.statusCode, 200, full.body)
  const s = summary.json().data as Array<Record<string, unknown>>
  const f = full.json().data as Array<Record<string, unknown>>
  t.same(s.map((w) => w.id), [...ids].reverse(), 'the same rows, newest first')
  t.equal(f.length, 3)
  for (const [i, w] of s.entries()) {
    t.same(DEFINITION.filter((k) => k in w), [], `summary ${i} has no definition`)
    const { nodes, connections, settings, ...rest } = f[i]!
    t.same(w, rest, `summary ${i} is the full row without its definition`)
    t.match(nodes, [{ name: 'Webhook', parameters: { path: `p${2 - i}` } }])
    t.same(connections, { Webhook: { main: [[]] } })
    t.same(settings, { executionOrder: 'v1' })
  }
  t.ok(summary.body.length < full.body.length, `smaller: ${summary.body.length} < ${full.body.length} bytes`)
  assertValidation(t, await get(a, '/workflows?include=everything'), ['querystring/include'])
  const paged = await get(a, '/workflows?limit=2')
  const next = paged.json().next_cursor
  t.type(next, 'string')
  t.same((await get(a, `/workflows?limit=2&cursor=${next}`)).json().data.map((w: { id: string }) => w.id), [ids[0]], 'pages as before')
})

t.test('GET /workflows: ETag and If-None-Match → 304 until something on the page changes', async (t) => {
  const first = await get(a, '/workflows')
  const etag = first.headers.etag as string
  t.match(etag, /^"[A-Za-z0-9_-]{16}"$/, 'an ETag')
  const again = await get(a, '/workflows', { 'if-none-match': etag })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '', 'no body')
  t.equal(again.headers.etag, etag)
  t.equal((await get(a, '/workflows', { 'if-none-match': `W/${etag}` })).statusCode, 304, 'weak comparison')
  t.equal((await get(a, '/workflows', { 'if-none-match': `"other", ${etag}` })).statusCode, 304, 'a list')
  t.equal((await get(a, '/workflows', { 'if-none-match': '*' })).statusCode, 304, '*')
  t.equal((await get(a, '/workflows', { 'if-none-match': '"stale"' })).statusCode, 200, 'another ETag: the answer')

  const full = await get(a, '/workflows?include=definition')
  t.not(full.headers.etag, etag, 'the definition answer has its own ETag')
  t.equal((await get(a, '/workflows?include=definition', { 'if-none-match': etag })).statusCode, 200)
  t.not((await get(b, '/workflows')).headers.etag, etag, 'another user\'s page differs')
  t.equal((await get(b, '/workflows', { 'if-none-match': etag })).statusCode, 200)

  // a sync moves a count: the page changed, the ETag with it
  await db.query('update public.mvp_workflows set execution_count = execution_count + 1, successful_executions = successful_executions + 1 where id = $1', [ids[1]])
  const moved = await get(a, '/workflows', { 'if-none-match': etag })
  t.equal(moved.statusCode, 200, 'changed: the new answer')
  t.not(moved.headers.etag, etag)
  t.equal(moved.json().data.find((w: { id: string }) => w.id === ids[1]).execution_count, 1)
  t.equal((await get(a, '/workflows', { 'if-none-match': moved.headers.etag as string })).statusCode, 304)
  assertProblem(t, await app.inject({ method: 'GET', url: '/workflows', headers: { 'if-none-match': etag } }), 401, 'invalid_token')
})

t.test('GET /workflows/{id}: ETag "<version>.<digest>", 304, and If-Match still means the version', async (t) => {
  const first = await get(a, `/workflows/${ids[0]}`)
  t.equal(first.statusCode, 200)
  const etag = first.headers.etag as string
  t.match(etag, /^"1\.[A-Za-z0-9_-]{16}"$/)
  const same = await get(a, `/workflows/${ids[0]}`, { 'if-none-match': etag })
  t.equal(same.statusCode, 304)
  t.equal(same.body, '')
  await db.query("update public.mvp_workflows set last_execution_status = 'success', last_execution_at = now() where id = $1", [ids[0]])
  const moved = await get(a, `/workflows/${ids[0]}`, { 'if-none-match': etag })
  t.equal(moved.statusCode, 200, 'a change that leaves the version alone still changes the ETag')
  t.match(moved.headers.etag, /^"1\./)
  t.not(moved.headers.etag, etag)
  assertProblem(t, await get(b, `/workflows/${ids[0]}`, { 'if-none-match': etag }), 404, 'not_found')
  const stale = await app.inject({ method: 'PATCH', url: `/workflows/${ids[0]}`, headers: { ...a.auth, 'if-match': '"7.abcdefABCDEF0123"' }, payload: { name: 'x' } })
  assertProblem(t, stale, 412, 'precondition_failed')
  t.equal(parseVersion(moved.headers.etag as string), 1, 'GET\'s ETag as If-Match is the version')
  t.equal(parseVersion('W/"3"'), 3)
  t.throws(() => parseVersion('"1.2.3"'), /If-Match must be/)
})

t.test('GET /workflows: the If-None-Match check (row versions) agrees with the page it stands for', async (t) => {
  const c = await testUser()
  const cids: string[] = []
  for (let i = 0; i < 3; i++) cids.push(await seed(c, 20 + i))
  const first = await get(c, '/workflows?limit=1')
  const etag = first.headers.etag as string
  t.same(first.json().data.map((w: { id: string }) => w.id), [cids[2]])
  t.equal((await get(c, '/workflows?limit=1', { 'if-none-match': etag })).statusCode, 304)
  // a row that is neither on the page nor the next one: the page did not change
  await db.query('update public.mvp_workflows set execution_count = 5 where id = $1', [cids[0]])
  t.equal((await get(c, '/workflows?limit=1', { 'if-none-match': etag })).statusCode, 304, 'a change two rows down leaves the page alone')
  t.not((await get(c, '/workflows?limit=3')).headers.etag, (await get(c, '/workflows?limit=2')).headers.etag, 'the limit is part of the ETag')

  // an update that changes nothing visible still writes a new row version: a 200, never a stale 304
  await db.query('update public.mvp_workflows set name = name where id = $1', [cids[2]])
  const touched = await get(c, '/workflows?limit=1', { 'if-none-match': etag })
  t.equal(touched.statusCode, 200)
  const etag2 = touched.headers.etag as string
  t.equal((await get(c, '/workflows?limit=1', { 'if-none-match': etag2 })).statusCode, 304, 'the 200\'s ETag is the one the check computes')

  // through the service: a write is seen by the next poll (read-your-writes)
  const patched = await app.inject({ method: 'PATCH', url: `/workflows/${cids[2]}`, headers: c.auth, payload: { description: 'changed through the API' } })
  t.ok([200, 503].includes(patched.statusCode), `PATCH answered ${patched.statusCode}`)
  const afterPatch = await get(c, '/workflows?limit=1', { 'if-none-match': etag2 })
  t.equal(afterPatch.statusCode, 200, 'the write changed the ETag')
  t.equal(afterPatch.json().data[0].description, 'changed through the API')

  // the next page's first row decides next_cursor: deleting it changes the page's ETag
  const etag3 = afterPatch.headers.etag as string
  await db.query('delete from public.mvp_workflows where id = $1', [cids[1]])
  const afterDelete = await get(c, '/workflows?limit=1', { 'if-none-match': etag3 })
  t.equal(afterDelete.statusCode, 200, 'a delete of the row after the page changes the ETag')
  t.type(afterDelete.json().next_cursor, 'string', 'a next page still exists (the oldest row)')
  await db.query('delete from public.mvp_workflows where id = $1', [cids[0]])
  const last = await get(c, '/workflows?limit=1', { 'if-none-match': afterDelete.headers.etag as string })
  t.equal(last.statusCode, 200)
  t.equal(last.json().next_cursor, null, 'no next page any more: another ETag')
})
