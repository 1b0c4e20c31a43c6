// Every /workflows route through app.inject: success and each documented error. Real Postgres
// (RLS transactions), n8n faked with nock.
import t from 'tap'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, assertValidation, nockedTestApp } from '../helpers/http.ts'
import { API, expectActivate, expectCreate, expectDeactivate, expectGet, expectUpdate, n8n, n8nWorkflow, N8N_API_KEY } from '../helpers/n8n-nock.ts'

const { h, inject, seen, unmatched } = await nockedTestApp(t, { env: { BODY_LIMIT_BYTES: '16384' } })

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0] as [number, number], parameters: { path: 'x' } }

function prefix (u: TestUser): string {
  return `[USR-${u.id.replace(/-/g, '').slice(0, 8)}]`
}

/** Creates a deployed workflow through the API (n8n id `n8nId`). */
async function createDeployed (u: TestUser, n8nId: string, payload: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const c = expectCreate(n8nId)
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: `wf ${n8nId}`, nodes: [trigger], ...payload } })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.body}`)
  if (!c.scope.isDone()) throw new Error('n8n create was not called')
  return res.json()
}

t.test('POST /workflows creates, deploys with the contract name and marker → 201 + Location', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-create-1')
  const payload = {
    name: 'Lead intake',
    description: 'webhook to CRM',
    nodes: [trigger],
    connections: { Webhook: { main: [[]] } },
    settings: { executionOrder: 'v1', timezone: 'Europe/Berlin' }
  }
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.equal(res.headers.location, `/workflows/${body.id}`)
  t.equal(res.headers.etag, '"1"')
  t.match(body, {
    user_id: u.id,
    name: 'Lead intake',
    description: 'webhook to CRM',
    active: false,
    status: 'deployed',
    n8n_workflow_id: 'n8n-create-1',
    nodes: [trigger],
    connections: { Webhook: { main: [[]] } },
    settings: { executionOrder: 'v1', timezone: 'Europe/Berlin' },
    execution_count: 0,
    successful_executions: 0,
    failed_executions: 0,
    last_execution_at: null,
    last_execution_status: null,
    last_error: null,
    version: 1
  })
  t.notOk('deploy_attempts' in body, 'internal columns are not exposed')
  t.ok(c.scope.isDone(), 'n8n create called')
  t.equal(c.bodies.length, 1)
  const sent = c.bodies[0]!
  t.same(Object.keys(sent).sort(), ['connections', 'name', 'nodes', 'settings', 'staticData'], 'only the writable fields are sent')
  t.equal(sent.name, `${prefix(u)} Lead intake`, 'n8n name is [USR-<8 hex>] <name>')
  t.match(String(sent.name), /^\[USR-[0-9a-f]{8}\] /)
  t.same(sent.nodes, [trigger])
  t.same(sent.connections, { Webhook: { main: [[]] } })
  t.same(sent.settings, { executionOrder: 'v1', timezone: 'Europe/Berlin' })
  t.same(sent.staticData, { workflow_sync: { row_id: body.id, user_id: u.id } }, 'staticData marker names the row')

  const got = await inject({ method: 'GET', url: `/workflows/${body.id}`, headers: u.auth })
  t.equal(got.statusCode, 200)
  t.same(got.json(), body, 'GET answers what POST answered')
})

t.test('POST /workflows with active: true activates in n8n', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-active-1')
  const act = expectActivate('n8n-active-1')
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'on', nodes: [trigger], active: true } })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { active: true, status: 'deployed', n8n_workflow_id: 'n8n-active-1', last_error: null })
  t.ok(c.scope.isDone(), 'created')
  t.ok(act.isDone(), 'activated')
})

t.test('POST /workflows with active: true and no trigger → 201 deployed, inactive, n8n\'s reason in last_error', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-notrigger-1')
  const act = n8n().post(`${API}/workflows/n8n-notrigger-1/activate`)
    .reply(400, { message: 'Workflow has no node to start the workflow - at least one trigger, poller or webhook node is required' })
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'manual', nodes: [{ name: 'Set', type: 'n8n-nodes-base.set' }], active: true } })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.match(body, { active: false, status: 'deployed', n8n_workflow_id: 'n8n-notrigger-1' })
  t.match(body.last_error, /^n8n could not activate the workflow: Workflow has no node to start the workflow/)
  t.ok(c.scope.isDone() && act.isDone())
})

t.test('POST /workflows: n8n refuses the definition → 201 with status error and n8n\'s reason', async (t) => {
  const u = await testUser()
  const scope = n8n().post(`${API}/workflows`).reply(400, { message: 'request/body/nodes/0 must have required property \'position\'' })
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'bad', nodes: [trigger] } })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { status: 'error', n8n_workflow_id: null, last_error: /^n8n rejected the workflow: request\/body\/nodes\/0 must have required property/ })
  t.ok(scope.isDone())
})

t.test('POST /workflows validation → 400 problem with errors[]', async (t) => {
  const u = await testUser()
  const before = unmatched.requests.length
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { nodes: [] } }), ['body/name'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: '   ' } }), ['body/name'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x'.repeat(101) } }), ['body/name'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x', id: 'mine' } }), ['body'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x', settings: { bogus: true } } }), ['body/settings'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x', nodes: [{ name: 'no type' }] } }), ['body/nodes/0/type'])
  assertValidation(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x', active: 'yes' } }), ['body/active'])
  t.equal(unmatched.requests.length, before, 'n8n was never called')
  const list = await inject({ method: 'GET', url: '/workflows', headers: u.auth })
  t.same(list.json().data, [], 'nothing was stored')
})

t.test('GET /workflows/:id', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-get-1')
  const res = await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })
  t.equal(res.statusCode, 200)
  t.match(res.headers.etag, /^"1\.[A-Za-z0-9_-]+"$/, 'ETag: the version and a digest of the answer')
  t.equal(res.json().id, w.id)
  const missing = assertProblem(t, await inject({ method: 'GET', url: '/workflows/00000000-0000-4000-8000-000000000000', headers: u.auth }), 404, 'not_found')
  t.equal(missing.detail, 'No workflow with this id')
  assertValidation(t, await inject({ method: 'GET', url: '/workflows/not-a-uuid', headers: u.auth }), ['params/id'])
})

t.test('GET /workflows: keyset pagination across pages, filters, invalid cursor', async (t) => {
  const u = await testUser()
  // Rows with controlled timestamps: two within the same millisecond (microseconds apart) and two
  // with the very same timestamp (the id breaks the tie) — a millisecond cursor would skip rows.
  const base = '2025-01-10 12:00:00'
  const rows: Array<[string, string, boolean, string]> = [
    ['a', `${base}.000100+00`, false, 'pending'],
    ['b', `${base}.000200+00`, true, 'deployed'],
    ['c', `${base}.000300+00`, false, 'deployed'],
    ['d', `${base}.000300+00`, true, 'error'],
    ['e', `${base}.004000+00`, true, 'deployed'],
    ['f', `${base}.004500+00`, false, 'pending'],
    ['g', '2025-01-10 12:00:01+00', false, 'deployed']
  ]
  for (const [name, at, active, status] of rows) {
    await h.db.query('insert into public.mvp_workflows (user_id, name, created_at, active, status) values ($1, $2, $3, $4, $5)', [u.id, name, at, active, status])
  }
  const expected = (await h.db.query<{ id: string, name: string }>('select id, name from public.mvp_workflows where user_id = $1 order by created_at desc, id desc', [u.id])).rows

  const seenIds: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/workflows?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const res = await inject({ method: 'GET', url, headers: u.auth })
    t.equal(res.statusCode, 200, res.body)
    const page = res.json() as { data: Array<{ id: string }>, next_cursor: string | null }
    t.ok(page.data.length <= 2, 'page size respects limit')
    seenIds.push(...page.data.map((w) => w.id))
    cursor = page.next_cursor
    pages++
  } while (cursor && pages < 10)
  t.equal(pages, 4, '7 rows at 2 per page: 4 pages, the last without next_cursor')
  t.same(seenIds, expected.map((r) => r.id), 'every row exactly once, newest first (created_at, then id)')

  const all = await inject({ method: 'GET', url: '/workflows?limit=100', headers: u.auth })
  t.equal(all.json().next_cursor, null)
  t.equal(all.json().data.length, 7)
  const exact = await inject({ method: 'GET', url: '/workflows?limit=7', headers: u.auth })
  t.equal(exact.json().next_cursor, null, 'a full last page has no next_cursor')

  const names = async (qs: string): Promise<string[]> => {
    const res = await inject({ method: 'GET', url: `/workflows?${qs}`, headers: u.auth })
    t.equal(res.statusCode, 200, res.body)
    return (res.json().data as Array<{ name: string }>).map((w) => w.name)
  }
  t.same(await names('status=deployed'), ['g', 'e', 'c', 'b'])
  t.same(await names('status=pending'), ['f', 'a'])
  t.same(await names('active=true'), ['e', 'd', 'b'])
  t.same(await names('active=false'), ['g', 'f', 'c', 'a'])
  t.same(await names('status=deployed&active=true'), ['e', 'b'])
  t.same(await names('status=missing_in_n8n'), [])
  // Filters and pagination together.
  const p1 = (await inject({ method: 'GET', url: '/workflows?status=deployed&limit=3', headers: u.auth })).json()
  t.same(p1.data.map((w: { name: string }) => w.name), ['g', 'e', 'c'])
  const p2 = (await inject({ method: 'GET', url: `/workflows?status=deployed&limit=3&cursor=${p1.next_cursor}`, headers: u.auth })).json()
  t.same(p2.data.map((w: { name: string }) => w.name), ['b'])
  t.equal(p2.next_cursor, null)

  const badCursors = [
    'garbage',
    Buffer.from('["2025-01-10T12:00:00Z"]').toString('base64url'),
    Buffer.from(`["2025-02-31T12:00:00Z","${expected[0]!.id}"]`).toString('base64url'),
    Buffer.from('["2025-01-10T12:00:00Z","------------------------------------"]').toString('base64url'),
    Buffer.from(`["yesterday","${expected[0]!.id}"]`).toString('base64url')
  ]
  for (const c of badCursors) {
    const body = assertValidation(t, await inject({ method: 'GET', url: `/workflows?cursor=${c}`, headers: u.auth }), ['querystring/cursor'])
    t.equal(body.detail, 'The cursor is not one this service issued')
  }
  assertValidation(t, await inject({ method: 'GET', url: '/workflows?limit=0', headers: u.auth }), ['querystring/limit'])
  assertValidation(t, await inject({ method: 'GET', url: '/workflows?limit=101', headers: u.auth }), ['querystring/limit'])
  assertValidation(t, await inject({ method: 'GET', url: '/workflows?status=bogus', headers: u.auth }), ['querystring/status'])
  assertValidation(t, await inject({ method: 'GET', url: '/workflows?active=yes', headers: u.auth }), ['querystring/active'])
})

t.test('PATCH /workflows/:id: If-Match, version, n8n PUT with the new definition', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-patch-1')
  const newNodes = [trigger, { name: 'Set', type: 'n8n-nodes-base.set', typeVersion: 3, position: [200, 0], parameters: {} }]
  const up = expectUpdate('n8n-patch-1')
  const res = await inject({
    method: 'PATCH',
    url: `/workflows/${w.id}`,
    headers: { ...u.auth, 'if-match': '"1"' },
    payload: { name: 'renamed', nodes: newNodes, connections: { Webhook: { main: [[{ node: 'Set', type: 'main', index: 0 }]] } } }
  })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.match(body, { name: 'renamed', version: 2, status: 'deployed', n8n_workflow_id: 'n8n-patch-1', last_error: null })
  t.same(body.nodes, newNodes)
  t.equal(res.headers.etag, '"2"')
  t.ok(up.scope.isDone(), 'n8n PUT called')
  t.equal(up.bodies.length, 1)
  t.same(Object.keys(up.bodies[0]!).sort(), ['connections', 'name', 'nodes', 'settings'])
  t.equal(up.bodies[0]!.name, `${prefix(u)} renamed`)
  t.same(up.bodies[0]!.nodes, newNodes)
  t.same(up.bodies[0]!.connections, { Webhook: { main: [[{ node: 'Set', type: 'main', index: 0 }]] } })

  // The version read before that change no longer matches: 412, nothing changed, n8n untouched.
  const before = unmatched.requests.length
  const stale = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...u.auth, 'if-match': '"1"' }, payload: { name: 'lost update' } })
  assertProblem(t, stale, 412, 'precondition_failed')
  t.equal(unmatched.requests.length, before, 'no n8n call on 412')
  const after = (await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).json()
  t.equal(after.name, 'renamed')
  t.equal(after.version, 2)

  // Weak and bare forms of the version are accepted.
  const up2 = expectUpdate('n8n-patch-1')
  const weak = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...u.auth, 'if-match': 'W/"2"' }, payload: { description: 'weak etag' } })
  t.equal(weak.statusCode, 200, weak.body)
  t.equal(weak.json().version, 3)
  t.ok(up2.scope.isDone())
  // Without If-Match the change is unconditional.
  const up3 = expectUpdate('n8n-patch-1')
  const free = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { settings: { saveManualExecutions: true } } })
  t.equal(free.statusCode, 200, free.body)
  t.equal(free.json().version, 4)
  t.same(up3.bodies[0]!.settings, { saveManualExecutions: true })

  // Validation: nothing to change, an empty name, an unknown field, a bad If-Match.
  assertValidation(t, await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: {} }), ['body'])
  assertValidation(t, await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { name: '' } }), ['body/name'])
  assertValidation(t, await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { active: true } }), ['body'])
  assertValidation(t, await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { nodes: 'x' } }), ['body/nodes'])
  assertValidation(t, await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...u.auth, 'if-match': 'latest' }, payload: { name: 'x' } }), ['headers/if-match'])
  assertValidation(t, await inject({ method: 'PATCH', url: '/workflows/nope', headers: u.auth, payload: { name: 'x' } }), ['params/id'])
  assertProblem(t, await inject({ method: 'PATCH', url: '/workflows/00000000-0000-4000-8000-000000000000', headers: { ...u.auth, 'if-match': '"1"' }, payload: { name: 'x' } }), 404, 'not_found')
  const final = (await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).json()
  t.equal(final.version, 4, 'rejected requests changed nothing')
})

t.test('PATCH of a workflow n8n lost recreates it there', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-lost-1')
  const gone = n8n().get(`${API}/workflows/n8n-lost-1`).reply(404, { message: 'Not Found' })
  const search = n8n().get(`${API}/workflows`).query(true).reply(200, { data: [], nextCursor: null })
  const c = expectCreate('n8n-lost-2')
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { description: 'again' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'n8n-lost-2', last_error: null })
  t.ok(gone.isDone() && search.isDone() && c.scope.isDone())
  t.same(c.bodies[0]!.staticData, { workflow_sync: { row_id: w.id, user_id: u.id } })
})

t.test('DELETE /workflows/:id removes it from n8n first, then the row', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-del-1')
  expectGet('n8n-del-1')
  const del = n8n().delete(`${API}/workflows/n8n-del-1`).reply(200, n8nWorkflow('n8n-del-1'))
  const res = await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth })
  t.equal(res.statusCode, 204, res.body)
  t.equal(res.body, '')
  t.ok(del.isDone(), 'n8n DELETE called')
  assertProblem(t, await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth }), 404, 'not_found')
  assertProblem(t, await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth }), 404, 'not_found')
  assertValidation(t, await inject({ method: 'DELETE', url: '/workflows/123', headers: u.auth }), ['params/id'])
})

t.test('DELETE: n8n 404 counts as gone → 204', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-del-404')
  expectGet('n8n-del-404')
  const del = n8n().delete(`${API}/workflows/n8n-del-404`).reply(404, { message: 'Not Found' })
  const res = await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth })
  t.equal(res.statusCode, 204, res.body)
  t.ok(del.isDone())
  t.equal((await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).statusCode, 404)
})

t.test('DELETE: n8n down → 503 and the row is kept', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-del-down')
  // DELETE is idempotent, so the client retries (N8N_RETRIES=1): two attempts.
  expectGet('n8n-del-down')
  const del = n8n().delete(`${API}/workflows/n8n-del-down`).times(2).replyWithError(new Error('connect ECONNREFUSED'))
  const res = await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth })
  const body = assertProblem(t, res, 503, 'n8n_unavailable')
  t.notMatch(String(body.detail), /ECONNREFUSED/, 'no low-level error text')
  t.ok(del.isDone())
  const still = await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })
  t.equal(still.statusCode, 200)
  t.equal(still.json().n8n_workflow_id, 'n8n-del-down')
  // n8n back: the delete goes through.
  expectGet('n8n-del-down')
  const again = n8n().delete(`${API}/workflows/n8n-del-down`).reply(200, n8nWorkflow('n8n-del-down'))
  t.equal((await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth })).statusCode, 204)
  t.ok(again.isDone())
})

t.test('POST /workflows/:id/activate and /deactivate are mirrored to n8n', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-act-1')
  const act = expectActivate('n8n-act-1')
  const on = await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth })
  t.equal(on.statusCode, 200, on.body)
  t.match(on.json(), { active: true, status: 'deployed', version: 2 })
  t.equal(on.headers.etag, '"2"')
  t.ok(act.isDone(), 'n8n activate called')

  const off = expectDeactivate('n8n-act-1')
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/deactivate`, headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { active: false, version: 3 })
  t.ok(off.isDone(), 'n8n deactivate called')

  assertProblem(t, await inject({ method: 'POST', url: '/workflows/00000000-0000-4000-8000-000000000000/activate', headers: u.auth }), 404, 'not_found')
  assertProblem(t, await inject({ method: 'POST', url: '/workflows/00000000-0000-4000-8000-000000000000/deactivate', headers: u.auth }), 404, 'not_found')
  assertValidation(t, await inject({ method: 'POST', url: '/workflows/x/activate', headers: u.auth }), ['params/id'])
})

t.test('activate: n8n says "no trigger" → 422 with n8n\'s message, the row stays inactive', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-act-422', { nodes: [{ name: 'Set', type: 'n8n-nodes-base.set' }] })
  const message = 'Workflow has no node to start the workflow - at least one trigger, poller or webhook node is required'
  expectGet('n8n-act-422')
  const act = n8n().post(`${API}/workflows/n8n-act-422/activate`).reply(400, { message })
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth })
  const body = assertProblem(t, res, 422, 'n8n_rejected')
  t.match(String(body.detail), message, 'n8n\'s message in detail')
  t.ok(act.isDone())
  const row = (await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).json()
  t.equal(row.active, false)
  t.equal(row.version, 1)
})

t.test('activate: n8n\'s message is shown, the API key inside it is not', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-act-key')
  expectGet('n8n-act-key')
  const act = n8n().post(`${API}/workflows/n8n-act-key/activate`).reply(400, { message: `invalid header X-N8N-API-KEY=${N8N_API_KEY}` })
  const body = assertProblem(t, await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth }), 422, 'n8n_rejected')
  t.match(String(body.detail), /\[redacted\]/)
  t.ok(act.isDone())
})

t.test('activate: n8n down → 503, the row unchanged', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-act-down')
  expectGet('n8n-act-down')
  const act = n8n().post(`${API}/workflows/n8n-act-down/activate`).times(2).reply(503, { message: 'maintenance' })
  assertProblem(t, await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth }), 503, 'n8n_unavailable')
  t.ok(act.isDone())
  t.equal((await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).json().active, false)
})

t.test('body over BODY_LIMIT_BYTES → 413 problem', async (t) => {
  const u = await testUser()
  const before = unmatched.requests.length
  const big = { name: 'big', description: 'x'.repeat(1000), nodes: Array.from({ length: 40 }, (_, i) => ({ name: `n${i}`, type: 'n8n-nodes-base.set', parameters: { v: 'y'.repeat(400) } })) }
  t.ok(JSON.stringify(big).length > 16384)
  assertProblem(t, await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: big }), 413, 'payload_too_large')
  t.equal(unmatched.requests.length, before)
  t.same((await inject({ method: 'GET', url: '/workflows', headers: u.auth })).json().data, [])
})

t.test('unknown route → 404 problem; malformed JSON → 400 problem', async (t) => {
  const u = await testUser()
  const nf = assertProblem(t, await inject({ method: 'GET', url: '/nope?x=1', headers: u.auth }), 404, 'not_found')
  t.equal(nf.detail, 'No route GET /nope')
  // A known path with another method: 405 with Allow (issue 11), not 404.
  const wrongMethod = await inject({ method: 'PUT', url: '/workflows', headers: u.auth })
  assertProblem(t, wrongMethod, 405, 'method_not_allowed')
  t.match(String(wrongMethod.headers.allow), /GET/)
  const bad = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'content-type': 'application/json' }, payload: '{"name": "x",' })
  assertValidation(t, bad, ['body'])
  const empty = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'content-type': 'application/json' }, payload: '' })
  assertProblem(t, empty, 400, 'validation_failed')
})

t.test('n8n answering something that is not a workflow → the row pending with last_error', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-500-shape')
  // n8n answers 200 with something that is not a workflow: a 502 n8n_error, not a crash.
  expectGet('n8n-500-shape')
  const up = n8n().put(`${API}/workflows/n8n-500-shape`).reply(200, { hello: 'world' })
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { name: 'x' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'pending', last_error: /^n8n failed: n8n returned an unexpected response shape/ })
  t.ok(up.isDone())
})

t.test('every /workflows route without a valid token → 401 problem with WWW-Authenticate', async (t) => {
  const id = '00000000-0000-4000-8000-000000000001'
  const routes: Array<{ method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown> }> = [
    { method: 'GET', url: '/workflows' },
    { method: 'POST', url: '/workflows', payload: { name: 'x' } },
    { method: 'GET', url: `/workflows/${id}` },
    { method: 'PATCH', url: `/workflows/${id}`, payload: { name: 'x' } },
    { method: 'DELETE', url: `/workflows/${id}` },
    { method: 'POST', url: `/workflows/${id}/activate` },
    { method: 'POST', url: `/workflows/${id}/deactivate` }
  ]
  const before = unmatched.requests.length
  for (const r of routes) {
    const none = await inject(r)
    assertProblem(t, none, 401, 'invalid_token')
    t.equal(none.headers['www-authenticate'], 'Bearer')
    const bad = await inject({ ...r, headers: { authorization: 'Bearer x.y.z' } })
    assertProblem(t, bad, 401, 'invalid_token')
    t.match(String(bad.headers['www-authenticate']), /^Bearer error="invalid_token"/)
  }
  t.equal(unmatched.requests.length, before, 'authentication comes before any work')
})

t.test('If-Match: * requires only that the workflow exists', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-star')
  const up = expectUpdate('n8n-star')
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...u.auth, 'if-match': '*' }, payload: { name: 'starred' } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().version, 2)
  t.ok(up.scope.isDone())
  assertProblem(t, await inject({ method: 'PATCH', url: '/workflows/00000000-0000-4000-8000-000000000002', headers: { ...u.auth, 'if-match': '*' }, payload: { name: 'x' } }), 404, 'not_found')
})

t.test('DELETE and activate: n8n answering 500 → 502 n8n_error, the row kept', async (t) => {
  const u = await testUser()
  const w = await createDeployed(u, 'n8n-502')
  // Idempotent calls are retried once on a 500.
  expectGet('n8n-502')
  const del = n8n().delete(`${API}/workflows/n8n-502`).times(2).reply(500, { message: 'Internal error' })
  assertProblem(t, await inject({ method: 'DELETE', url: `/workflows/${w.id}`, headers: u.auth }), 502, 'n8n_error')
  t.ok(del.isDone())
  expectGet('n8n-502')
  const act = n8n().post(`${API}/workflows/n8n-502/activate`).times(2).reply(500, { message: 'Internal error' })
  assertProblem(t, await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth }), 502, 'n8n_error')
  t.ok(act.isDone())
  const row = await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })
  t.equal(row.statusCode, 200)
  t.equal(row.json().active, false)
})

t.test('a body that is not JSON: unknown media type → 415 problem, text → 400 problem', async (t) => {
  const u = await testUser()
  const xml = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'content-type': 'application/xml' }, payload: '<name>x</name>' })
  assertProblem(t, xml, 415, 'validation_failed')
  const text = await inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, 'content-type': 'text/plain' }, payload: 'name=x' })
  assertValidation(t, text, ['body'])
})

t.test('many concurrent creates (more than the pool has connections) all deploy', async (t) => {
  // Each deploy holds a pooled connection for its lock and needs another for its steps: with as
  // many deploys as connections (10 here) they used to wait for each other until the pool's
  // connect timeout (5 s) and answer 503 database_unavailable.
  let n = 0
  const c = n8n().post(`${API}/workflows`).times(30).reply(200, () => n8nWorkflow(`n8n-burst-${n++}`))
  const users = await Promise.all(Array.from({ length: 30 }, async () => await testUser()))
  const answers = await Promise.all(users.map(async (u) => await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'burst', nodes: [trigger] } })))
  t.same(answers.map((r) => `${r.statusCode} ${r.statusCode === 201 ? r.json().status : r.json().code}`), Array(30).fill('201 deployed'))
  t.ok(c.isDone())
  t.equal(new Set(answers.map((r) => r.json().n8n_workflow_id)).size, 30)
})

t.test('rate limits: 429 problem with Retry-After, per user, writes stricter than reads', async (t) => {
  // RATE_LIMIT_MAX=10: reads 10/min, writes 2/min per user.
  const rl = await buildTestApp({ env: { RATE_LIMIT_MAX: '10' } })
  t.teardown(() => rl.close())
  const u = await testUser()
  const other = await testUser()
  let n = 0
  const c = n8n().post(`${API}/workflows`).times(3).reply(200, () => n8nWorkflow(`n8n-rl-${n++}`))
  const post = async (who: TestUser) => await rl.app.inject({ method: 'POST', url: '/workflows', headers: who.auth, payload: { name: 'rl' } })
  t.equal((await post(u)).statusCode, 201)
  t.equal((await post(u)).statusCode, 201)
  const limited = await post(u)
  assertProblem(t, limited, 429, 'rate_limited')
  t.match(String(limited.headers['retry-after']), /^\d+$/)
  t.ok(Number(limited.headers['retry-after']) >= 1 && Number(limited.headers['retry-after']) <= 60)
  // Another user has a budget of their own.
  t.equal((await post(other)).statusCode, 201)
  t.ok(c.isDone(), 'the limited request never reached n8n')
  // Reads: 10 per minute.
  const reads = []
  for (let i = 0; i < 11; i++) reads.push((await rl.app.inject({ method: 'GET', url: '/workflows', headers: u.auth })).statusCode)
  t.ok(reads.slice(0, 10).every((s) => s === 200), reads.join(','))
  t.equal(reads[10], 429)
})

t.test('database unreachable → 503 database_unavailable problem', async (t) => {
  const dead = new PgDatabase({ connectionString: 'postgres://postgres@127.0.0.1:1/nothing', connectionTimeoutMillis: 500 })
  const d = await buildTestApp({ db: dead, migrate: false })
  t.teardown(async () => { await d.close(); await dead.close() })
  const u = await testUser()
  const res = await d.app.inject({ method: 'GET', url: '/workflows', headers: u.auth })
  const body = assertProblem(t, res, 503, 'database_unavailable')
  t.notMatch(String(body.detail), /ECONNREFUSED|127\.0\.0\.1|postgres:/, 'no connection details')
})

t.test('no answer of this file carried the n8n API key; no unexpected n8n call', async (t) => {
  t.ok(seen.bodies > 50, `checked ${seen.bodies} answers`)
  t.same(seen.leaks, [])
  t.same(unmatched.requests, [])
})
