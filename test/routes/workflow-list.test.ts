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
