// POST /workflows/{id}/run: a Webhook-triggered workflow is run by calling its webhook on n8n
// (N8N_WEBHOOK_URL), never with the API key, never for an n8n workflow that is not the row's.
import { randomUUID } from 'node:crypto'
import nock from 'nock'
import t from 'tap'
import { N8N_TEST_ORIGIN, testUser } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { API, n8n, n8nWorkflow } from '../helpers/n8n-nock.ts'

const { h, inject, seen } = await nockedTestApp(t)

const webhookNode = (method: string | string[], path: string, webhookId: string | null = randomUUID()) => ({
  name: 'Webhook',
  type: 'n8n-nodes-base.webhook',
  typeVersion: 2,
  position: [0, 0],
  ...(webhookId ? { webhookId } : {}),
  parameters: { httpMethod: method, path, responseMode: 'onReceived' }
})
const scheduleNode = { name: 'Every hour', type: 'n8n-nodes-base.scheduleTrigger', typeVersion: 1, position: [0, 0], parameters: {} }

async function row (userId: string, nodes: unknown[], opts: { active?: boolean, status?: string, n8nId?: string | null } = {}): Promise<{ id: string, n8nId: string | null }> {
  const n8nId = opts.n8nId === undefined ? `n8n-${randomUUID().slice(0, 8)}` : opts.n8nId
  const r = await h.db.query<{ id: string }>(
    `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id, nodes)
     values ($1, 'hook', $2, $3, $4, $5::jsonb) returning id`,
    [userId, opts.status ?? 'deployed', opts.active ?? true, n8nId, JSON.stringify(nodes)])
  return { id: r.rows[0]!.id, n8nId }
}

function prefix (userId: string): string {
  return `[USR-${userId.replace(/-/g, '').slice(0, 8)}]`
}

/** n8n's copy of the row's workflow, marker and prefix included. */
function n8nCopy (userId: string, rowId: string, n8nId: string, nodes: unknown[], over: Record<string, unknown> = {}) {
  return n8nWorkflow(n8nId, {
    name: `${prefix(userId)} hook`,
    active: true,
    nodes: nodes as Array<Record<string, unknown>>,
    staticData: { workflow_sync: { row_id: rowId, user_id: userId } },
    ...over
  })
}

t.test('a POST webhook is called with the JSON body, without the API key; 202', async (tt) => {
  const u = await testUser()
  const nodes = [webhookNode('POST', 'orders/new')]
  const w = await row(u.id, nodes)
  n8n().get(`${API}/workflows/${w.n8nId}`).reply(200, n8nCopy(u.id, w.id, w.n8nId!, nodes))
  const bodies: unknown[] = []
  // badheaders: the interceptor does not match a request that carries the API key
  const hook = nock(N8N_TEST_ORIGIN, { badheaders: ['x-n8n-api-key'] }).post('/webhook/orders/new', (b: unknown) => { bodies.push(b); return true })
    .reply(200, { message: 'Workflow was started' })
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth, payload: { order: 42 } })
  tt.equal(res.statusCode, 202, res.body)
  tt.match(res.json(), { workflow_id: w.id, n8n_workflow_id: w.n8nId, trigger: 'n8n-nodes-base.webhook', method: 'POST', n8n_status: 200 })
  tt.ok(hook.isDone(), 'the webhook was called, without the API key')
  tt.same(bodies, [{ order: 42 }], 'with the body')
})

t.test('a GET webhook takes no body; without one it runs', async (tt) => {
  const u = await testUser()
  const nodes = [webhookNode('GET', 'ping')]
  const w = await row(u.id, nodes)
  n8n().get(`${API}/workflows/${w.n8nId}`).times(2).reply(200, n8nCopy(u.id, w.id, w.n8nId!, nodes))
  const withBody = await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth, payload: { a: 1 } })
  assertProblem(tt, withBody, 400, 'validation_failed')
  const hook = nock(N8N_TEST_ORIGIN).get('/webhook/ping').reply(200, {})
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth })
  tt.equal(res.statusCode, 202, res.body)
  tt.equal(res.json().method, 'GET')
  tt.ok(hook.isDone())
})

t.test('a Webhook node without webhookId is served under the workflow id and node name', async (tt) => {
  const u = await testUser()
  const nodes = [webhookNode('POST', 'go', null)]
  const w = await row(u.id, nodes)
  n8n().get(`${API}/workflows/${w.n8nId}`).reply(200, n8nCopy(u.id, w.id, w.n8nId!, nodes))
  const hook = nock(N8N_TEST_ORIGIN).post(`/webhook/${w.n8nId}/webhook/go`).reply(200, {})
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth })
  tt.equal(res.statusCode, 202, res.body)
  tt.ok(hook.isDone())
})

t.test('another trigger: 422 that names the runnable triggers; n8n is not called', async (tt) => {
  const u = await testUser()
  const w = await row(u.id, [scheduleNode])
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth })
  const body = assertProblem(tt, res, 422, 'unprocessable')
  tt.match(String(body.detail), /n8n-nodes-base\.scheduleTrigger/, 'says what the trigger is')
  tt.match(String(body.detail), /Runnable triggers: n8n-nodes-base\.webhook/, 'names the runnable triggers')
})

t.test('never acts on an n8n workflow that is not the row\'s', async (tt) => {
  const u = await testUser()
  const nodes = [webhookNode('POST', 'x')]
  const w = await row(u.id, nodes)
  // n8n's copy under that id carries another row's marker
  n8n().get(`${API}/workflows/${w.n8nId}`).reply(200, n8nCopy(u.id, randomUUID(), w.n8nId!, nodes))
  const hook = nock(N8N_TEST_ORIGIN).post('/webhook/x').reply(200, {})
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth }), 409, 'conflict')
  // ... or lacks the owner's prefix
  n8n().get(`${API}/workflows/${w.n8nId}`).reply(200, n8nCopy(u.id, w.id, w.n8nId!, nodes, { name: 'hook' }))
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth }), 409, 'conflict')
  tt.notOk(hook.isDone(), 'the webhook was never called')
  // another user's workflow does not exist for the caller
  const other = await testUser()
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: other.auth }), 404, 'not_found')
})

t.test('inactive, not deployed, missing in n8n, webhook not served, n8n down: clear answers', async (tt) => {
  const u = await testUser()
  const nodes = [webhookNode('POST', 'y')]
  const inactive = await row(u.id, nodes, { active: false })
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${inactive.id}/run`, headers: u.auth }), 409, 'conflict')
  const pending = await row(u.id, nodes, { status: 'pending', n8nId: null })
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${pending.id}/run`, headers: u.auth }), 409, 'conflict')
  const gone = await row(u.id, nodes)
  n8n().get(`${API}/workflows/${gone.n8nId}`).reply(404, { message: 'Not Found' })
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${gone.id}/run`, headers: u.auth }), 409, 'conflict')
  const w = await row(u.id, nodes)
  n8n().get(`${API}/workflows/${w.n8nId}`).times(3).reply(200, n8nCopy(u.id, w.id, w.n8nId!, nodes))
  nock(N8N_TEST_ORIGIN).post('/webhook/y').reply(404, { message: 'The requested webhook "POST y" is not registered.' })
  const notServed = assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth }), 409, 'conflict')
  tt.match(String(notServed.detail), /active/)
  nock(N8N_TEST_ORIGIN).post('/webhook/y').reply(500, { message: 'boom' })
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth }), 502, 'n8n_error')
  nock(N8N_TEST_ORIGIN).post('/webhook/y').replyWithError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' })
  assertProblem(tt, await inject({ method: 'POST', url: `/workflows/${w.id}/run`, headers: u.auth }), 503, 'n8n_unavailable')
  const bad = await inject({ method: 'POST', url: '/workflows/not-a-uuid/run', headers: u.auth })
  tt.equal(bad.statusCode, 400)
})

t.test('no answer carried the n8n API key', async (tt) => {
  tt.ok(seen.bodies > 10)
  tt.same(seen.leaks, [])
})
