// Never a duplicate in n8n: the same Idempotency-Key replays the first answer (per user), and a
// deploy retried after a crash between n8n's create and the database write adopts the workflow
// n8n already has (found by its staticData marker) instead of creating a second one.
import t from 'tap'
import type { Test } from 'tap'
import nock from 'nock'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestApp, TestUser } from '../helpers/app.ts'
import { assertProblem, assertValidation, injector } from '../helpers/http.ts'
import { API, expectActivate, expectCreate, expectUpdate, n8n, n8nWorkflow, recordUnmatched } from '../helpers/n8n-nock.ts'

nock.disableNetConnect()
const unmatched = recordUnmatched()
t.teardown(() => {
  unmatched.stop()
  nock.cleanAll()
  nock.enableNetConnect()
})
t.afterEach(() => { nock.cleanAll() })

const env = { RATE_LIMIT_MAX: '100000' }
const h = await buildTestApp({ env })
t.teardown(() => h.close())

// A second app whose first deploys die right after n8n created the workflow.
let crashes = 0
const crashing = await buildTestApp({
  env,
  workflowHooks: {
    afterN8nCreate: () => {
      if (crashes > 0) {
        crashes--
        throw new Error('crash')
      }
    }
  }
})
t.teardown(() => crashing.close())

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook' }

function post (app: TestApp, u: TestUser, payload: Record<string, unknown>, key?: string) {
  const { inject } = injector(app.app)
  return inject({ method: 'POST', url: '/workflows', headers: { ...u.auth, ...(key ? { 'idempotency-key': key } : {}) }, payload })
}

async function rowsOf (app: TestApp, u: TestUser): Promise<Array<Record<string, any>>> {
  return (await app.db.query<Record<string, any>>('select * from public.mvp_workflows where user_id = $1 order by created_at', [u.id])).rows
}

t.test('the same Idempotency-Key twice → one n8n create, the first answer replayed', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-idem-1')
  const before = unmatched.requests.length
  const first = await post(h, u, { name: 'once', nodes: [trigger] }, 'key-1')
  t.equal(first.statusCode, 201, first.body)
  t.notOk(first.headers['idempotent-replayed'], 'the first answer is not a replay')
  const second = await post(h, u, { name: 'once', nodes: [trigger] }, 'key-1')
  t.equal(second.statusCode, 201, second.body)
  t.equal(second.headers['idempotent-replayed'], 'true')
  t.same(second.json(), first.json(), 'same body')
  t.equal(second.headers.location, first.headers.location)
  t.ok(c.scope.isDone())
  t.equal(c.bodies.length, 1, 'n8n saw exactly one create')
  t.equal(unmatched.requests.length, before, 'no second POST reached n8n')
  t.equal((await rowsOf(h, u)).length, 1, 'one row')
  // A third time, still the same.
  const third = await post(h, u, { name: 'once', nodes: [trigger] }, 'key-1')
  t.same(third.json(), first.json())
  // Another key is another workflow.
  const c2 = expectCreate('n8n-idem-2')
  const other = await post(h, u, { name: 'once', nodes: [trigger] }, 'key-2')
  t.equal(other.statusCode, 201)
  t.not(other.json().id, first.json().id)
  t.ok(c2.scope.isDone())
})

t.test('the same key with a different body → 409, nothing created', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-idem-409')
  t.equal((await post(h, u, { name: 'first', nodes: [trigger] }, 'key-409')).statusCode, 201)
  const before = unmatched.requests.length
  for (const payload of [{ name: 'second', nodes: [trigger] }, { name: 'first', nodes: [trigger], active: true }, { name: 'first' }]) {
    const res = await post(h, u, payload, 'key-409')
    const body = assertProblem(t, res, 409, 'conflict')
    t.match(String(body.detail), /Idempotency-Key/)
    t.notOk(res.headers['idempotent-replayed'])
  }
  t.equal(unmatched.requests.length, before)
  t.ok(c.scope.isDone())
  t.equal((await rowsOf(h, u)).length, 1)
})

t.test('keys are per user: B with A\'s key creates B\'s own workflow', async (t) => {
  const a = await testUser()
  const b = await testUser()
  const ca = expectCreate('n8n-idem-a')
  const ra = await post(h, a, { name: 'shared key', nodes: [trigger] }, 'same-key')
  const cb = expectCreate('n8n-idem-b')
  const rb = await post(h, b, { name: 'shared key', nodes: [trigger] }, 'same-key')
  t.equal(rb.statusCode, 201, rb.body)
  t.notOk(rb.headers['idempotent-replayed'], 'not A\'s answer')
  t.equal(rb.json().user_id, b.id)
  t.not(rb.json().id, ra.json().id)
  t.equal(rb.json().n8n_workflow_id, 'n8n-idem-b')
  t.ok(ca.scope.isDone() && cb.scope.isDone())
  // And B's replay is B's.
  const again = await post(h, b, { name: 'shared key', nodes: [trigger] }, 'same-key')
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.json().id, rb.json().id)
  // B reusing its own key with another body: 409.
  assertProblem(t, await post(h, b, { name: 'other', nodes: [trigger] }, 'same-key'), 409, 'conflict')
})

t.test('an expired key is free again', async (t) => {
  const u = await testUser()
  const c1 = expectCreate('n8n-exp-1')
  const first = await post(h, u, { name: 'exp', nodes: [trigger] }, 'key-exp')
  t.ok(c1.scope.isDone())
  await h.db.query('update public.idempotency_keys set expires_at = now() - interval \'1 second\' where user_id = $1', [u.id])
  const c2 = expectCreate('n8n-exp-2')
  const second = await post(h, u, { name: 'exp', nodes: [trigger] }, 'key-exp')
  t.equal(second.statusCode, 201)
  t.notOk(second.headers['idempotent-replayed'])
  t.not(second.json().id, first.json().id)
  t.ok(c2.scope.isDone())
})

t.test('Idempotency-Key validation', async (t) => {
  const u = await testUser()
  assertValidation(t, await post(h, u, { name: 'x' }, 'k'.repeat(201)), ['headers/idempotency-key'])
})

t.test('concurrent requests with the same key → one n8n create, one row', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-conc-1')
  const before = unmatched.requests.length
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await post(h, u, { name: 'race', nodes: [trigger] }, 'key-race')))
  t.same(answers.map((r) => r.statusCode), [201, 201, 201, 201, 201], answers.map((r) => r.body).join('\n'))
  t.same([...new Set(answers.map((r) => r.json().id))].length, 1, 'one workflow id')
  t.same([...new Set(answers.map((r) => r.json().n8n_workflow_id))], ['n8n-conc-1'])
  t.ok(c.scope.isDone())
  t.equal(c.bodies.length, 1, 'one create')
  t.equal(unmatched.requests.length, before, 'no other n8n call (no redundant update either)')
  t.equal((await rowsOf(h, u)).length, 1)
  t.equal(answers.filter((r) => r.headers['idempotent-replayed'] !== 'true').length, 1, 'one answer deployed, the others replayed it')
  t.same([...new Set(answers.map((r) => r.body))].length, 1, 'all the same body')
})

/** Runs a create that dies after n8n created the workflow; answers the n8n workflow it created. */
async function crashAfterCreate (t: Test, u: TestUser, n8nId: string, payload: Record<string, unknown>, key?: string): Promise<ReturnType<typeof n8nWorkflow>> {
  crashes = 1
  const c = expectCreate(n8nId)
  const res = await post(crashing, u, payload, key)
  assertProblem(t, res, 500, 'internal')
  t.notMatch(res.body, /crash/, 'the internal error is not shown')
  t.ok(c.scope.isDone(), 'n8n created the workflow before the crash')
  const sent = c.bodies[0]!
  const rows = await rowsOf(crashing, u)
  t.equal(rows.length, 1, 'the row was kept')
  t.match(rows[0], { status: 'pending', n8n_workflow_id: null, deploy_attempts: 1 })
  t.same(sent.staticData, { workflow_sync: { row_id: rows[0]!.id, user_id: u.id } }, 'the marker names the row')
  // What n8n now holds: the workflow, with the marker.
  return n8nWorkflow(n8nId, { name: String(sent.name), nodes: sent.nodes as never, staticData: sent.staticData as Record<string, unknown> })
}

/** n8n's GET /workflows: the held workflows whose name contains the `name` filter (n8n uses LIKE %name%). */
function expectSearch (held: Array<ReturnType<typeof n8nWorkflow>>) {
  const queries: Array<Record<string, unknown>> = []
  const scope = n8n().get(`${API}/workflows`).query((q) => { queries.push(q); return true }).reply(200, { data: held, nextCursor: null })
  return { scope, queries }
}

t.test('crash after the n8n create; the retry with the same key adopts it: one workflow in n8n', async (t) => {
  const u = await testUser()
  const payload = { name: 'crashy', nodes: [trigger], active: true }
  const held = await crashAfterCreate(t, u, 'n8n-crash-1', payload, 'key-crash')
  const before = unmatched.requests.length
  const search = expectSearch([n8nWorkflow('someone-elses', { name: `${held.name}`, staticData: { workflow_sync: { row_id: '00000000-0000-4000-8000-000000000000' } } }), held])
  const up = expectUpdate('n8n-crash-1')
  const act = expectActivate('n8n-crash-1')
  const res = await post(crashing, u, payload, 'key-crash')
  t.equal(res.statusCode, 201, res.body)
  t.notOk(res.headers['idempotent-replayed'], 'the first request never answered: this is its answer, not a replay')
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'n8n-crash-1', active: true, last_error: null })
  t.ok(search.scope.isDone(), 'looked for the marker')
  t.ok(held.name.includes(String(search.queries[0]?.name)), `n8n's name filter (${String(search.queries[0]?.name)}) finds "${held.name}"`)
  t.ok(up.scope.isDone(), 'updated the adopted workflow')
  t.ok(act.isDone(), 'the original request\'s active: true is honoured on the retry')
  t.equal(unmatched.requests.length, before, 'no second POST /workflows: n8n holds one workflow')
  t.equal((await rowsOf(crashing, u)).length, 1)
  // Now complete: the key replays.
  const replay = await post(crashing, u, payload, 'key-crash')
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.json(), res.json())
})

t.test('crash without a key; a later PATCH (with a new name) adopts the orphan', async (t) => {
  const u = await testUser()
  const held = await crashAfterCreate(t, u, 'n8n-crash-2', { name: 'before rename', nodes: [trigger] })
  const [row] = await rowsOf(crashing, u)
  const before = unmatched.requests.length
  const search = expectSearch([held])
  const up = expectUpdate('n8n-crash-2')
  const { inject } = injector(crashing.app)
  const res = await inject({ method: 'PATCH', url: `/workflows/${row!.id}`, headers: u.auth, payload: { name: 'after rename' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'n8n-crash-2', name: 'after rename', version: 2 })
  t.ok(search.scope.isDone())
  // The orphan still has its old name in n8n: the search must find it by what all of the user's names share.
  t.ok(held.name.includes(String(search.queries[0]?.name)), `n8n's name filter (${String(search.queries[0]?.name)}) finds "${held.name}"`)
  t.ok(up.scope.isDone())
  t.match(String(up.bodies[0]?.name), /\] after rename$/, 'the adopted workflow gets the new name')
  t.equal(unmatched.requests.length, before, 'no second create')
})

t.test('crash; POST /workflows/:id/redeploy adopts the orphan', async (t) => {
  const u = await testUser()
  const held = await crashAfterCreate(t, u, 'n8n-crash-3', { name: 'redeploy me', nodes: [trigger] })
  const [row] = await rowsOf(crashing, u)
  const before = unmatched.requests.length
  const search = expectSearch([held])
  const up = expectUpdate('n8n-crash-3')
  const { inject } = injector(crashing.app)
  const res = await inject({ method: 'POST', url: `/workflows/${row!.id}/redeploy`, headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'n8n-crash-3' })
  t.ok(search.scope.isDone() && up.scope.isDone())
  t.equal(unmatched.requests.length, before, 'no second create')
})

t.test('crash; DELETE finds the orphan by its marker and removes it from n8n', async (t) => {
  const u = await testUser()
  const held = await crashAfterCreate(t, u, 'n8n-crash-4', { name: 'delete me', nodes: [trigger] })
  const [row] = await rowsOf(crashing, u)
  const search = expectSearch([held])
  const del = n8n().delete(`${API}/workflows/n8n-crash-4`).reply(200, held)
  const { inject } = injector(crashing.app)
  const res = await inject({ method: 'DELETE', url: `/workflows/${row!.id}`, headers: u.auth })
  t.equal(res.statusCode, 204, res.body)
  t.ok(search.scope.isDone() && del.isDone(), 'the orphan is not left behind in n8n')
  t.equal((await rowsOf(crashing, u)).length, 0)
})

t.test('a retry after a create whose answer was lost (n8n timed out) adopts too', async (t) => {
  const u = await testUser()
  // The first attempt fails at n8n (the answer never came); n8n may or may not have created it.
  const lost = n8n().post(`${API}/workflows`).replyWithError(new Error('socket hang up'))
  const first = await post(h, u, { name: 'lost answer', nodes: [trigger] }, 'key-lost')
  t.equal(first.statusCode, 201)
  t.match(first.json(), { status: 'pending', n8n_workflow_id: null, last_error: /^n8n is unavailable/ })
  t.ok(lost.isDone())
  // n8n did create it: a PATCH finds it by the marker instead of creating a second one.
  const id = first.json().id as string
  const held = n8nWorkflow('n8n-lost-1', { name: `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] lost answer`, staticData: { workflow_sync: { row_id: id, user_id: u.id } } })
  const search = expectSearch([held])
  const up = expectUpdate('n8n-lost-1')
  const before = unmatched.requests.length
  const { inject } = injector(h.app)
  const res = await inject({ method: 'PATCH', url: `/workflows/${id}`, headers: u.auth, payload: { description: 'retry' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'n8n-lost-1', last_error: null })
  t.ok(search.scope.isDone() && up.scope.isDone())
  t.equal(unmatched.requests.length, before)
})
