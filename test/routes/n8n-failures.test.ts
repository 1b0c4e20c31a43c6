// n8n down, slow (past N8N_TIMEOUT_MS=500) and failing: the user's work is kept (201, status
// pending, last_error) and a later deploy, with n8n back, finishes the job.
import t from 'tap'
import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { API, expectCreate, expectGet, expectUpdate, n8n, n8nWorkflow } from '../helpers/n8n-nock.ts'

const { inject, seen, unmatched } = await nockedTestApp(t)

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook' }
const SLOW_MS = 900

/**
 * A reply that arrives after the client's timeout. nock's delay() does not abort fetch, and a
 * callback-style reply function fails under fetch with nock 15; an async one that ignores the
 * request works.
 */
function slowly<T> (body: T): () => Promise<[number, T]> {
  return async () => {
    await sleep(SLOW_MS)
    return [200, body]
  }
}

async function createAndExpectPending (t: Test, u: TestUser, lastError: RegExp, payload: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const started = Date.now()
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'kept', nodes: [trigger], ...payload } })
  t.equal(res.statusCode, 201, res.body)
  t.ok(Date.now() - started < 5000, 'answered without hanging')
  const body = res.json()
  t.match(body, { status: 'pending', n8n_workflow_id: null, active: false, last_error: lastError, version: 1 })
  t.equal(res.headers.location, `/workflows/${body.id}`)
  // The row is kept: readable and listed.
  const got = await inject({ method: 'GET', url: `/workflows/${body.id}`, headers: u.auth })
  t.equal(got.statusCode, 200)
  t.same(got.json(), body)
  const list = await inject({ method: 'GET', url: '/workflows?status=pending', headers: u.auth })
  t.ok((list.json().data as Array<{ id: string }>).some((w) => w.id === body.id), 'listed as pending')
  return body
}

/** n8n is back: a PATCH finds no orphan (the failed attempt created none) and creates it. */
async function patchDeploys (t: Test, u: TestUser, w: Record<string, any>, n8nId: string): Promise<void> {
  const search = n8n().get(`${API}/workflows`).query(true).reply(200, { data: [], nextCursor: null })
  const c = expectCreate(n8nId)
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: { ...u.auth, 'if-match': `"${w.version}"` }, payload: { description: 'n8n is back' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: n8nId, last_error: null, description: 'n8n is back' })
  t.ok(search.isDone(), 'looked for an orphan of the failed attempt first')
  t.ok(c.scope.isDone(), 'created in n8n')
  t.same(c.bodies[0]!.staticData, { workflow_sync: { row_id: w.id, user_id: u.id } })
}

t.test('n8n down (connection refused) → 201 pending with last_error; a later PATCH deploys it', async (t) => {
  const u = await testUser()
  const down = n8n().post(`${API}/workflows`).replyWithError(new Error('connect ECONNREFUSED 127.0.0.1:5678'))
  const w = await createAndExpectPending(t, u, /^n8n is unavailable: n8n request POST \/workflows failed: connection refused at http:\/\/n8n\.test$/)
  t.ok(down.isDone())
  await patchDeploys(t, u, w, 'n8n-back-1')
})

t.test('n8n slow (beyond N8N_TIMEOUT_MS) → 201 pending with last_error; a later PATCH deploys it', async (t) => {
  const u = await testUser()
  const slow = n8n().post(`${API}/workflows`).reply(slowly(n8nWorkflow('too-late')))
  // The message says the client gave up at N8N_TIMEOUT_MS, not that n8n answered late.
  const w = await createAndExpectPending(t, u, /^n8n is unavailable: n8n request POST \/workflows timed out after 500 ms at http:\/\/n8n\.test$/)
  t.ok(slow.isDone())
  await patchDeploys(t, u, w, 'n8n-back-2')
})

t.test('n8n 500 → 201 pending with last_error; a later PATCH deploys it', async (t) => {
  const u = await testUser()
  const fail = n8n().post(`${API}/workflows`).reply(500, { message: 'Internal error: SQLITE_BUSY' })
  const w = await createAndExpectPending(t, u, /^n8n failed: n8n answered HTTP 500 for POST \/workflows$/)
  t.ok(fail.isDone(), 'one attempt: a create is never retried')
  await patchDeploys(t, u, w, 'n8n-back-3')
})

t.test('n8n 503 and a bad API key → 201 pending, and the reason says so', async (t) => {
  const u = await testUser()
  const busy = n8n().post(`${API}/workflows`).reply(503, { message: 'maintenance' })
  await createAndExpectPending(t, u, /^n8n is unavailable: n8n is unavailable \(HTTP 503/)
  t.ok(busy.isDone())
  const denied = n8n().post(`${API}/workflows`).reply(401, { message: 'unauthorized' })
  await createAndExpectPending(t, u, /^n8n failed: n8n rejected the service's API key \(HTTP 401\)$/)
  t.ok(denied.isDone())
})

t.test('create with active: true and n8n down → pending and inactive; activating later deploys and activates', async (t) => {
  const u = await testUser()
  const down = n8n().post(`${API}/workflows`).replyWithError(new Error('ECONNRESET'))
  const w = await createAndExpectPending(t, u, /^n8n is unavailable/, { active: true })
  t.ok(down.isDone())
  const search = n8n().get(`${API}/workflows`).query(true).reply(200, { data: [], nextCursor: null })
  const c = expectCreate('n8n-back-4')
  const act = n8n().post(`${API}/workflows/n8n-back-4/activate`).reply(200, n8nWorkflow('n8n-back-4', { active: true }))
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { active: true, status: 'deployed', n8n_workflow_id: 'n8n-back-4', last_error: null })
  t.ok(search.isDone() && c.scope.isDone() && act.isDone())
})

t.test('activate while n8n is still down → 503, the row stays pending', async (t) => {
  const u = await testUser()
  n8n().post(`${API}/workflows`).replyWithError(new Error('ECONNREFUSED'))
  const w = await createAndExpectPending(t, u, /^n8n is unavailable/)
  // The deploy that activation needs fails too: the search for an orphan is retried once.
  const search = n8n().get(`${API}/workflows`).query(true).times(2).replyWithError(new Error('ECONNREFUSED'))
  assertProblem(t, await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth }), 503, 'n8n_unavailable')
  t.ok(search.isDone())
  const row = (await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).json()
  t.match(row, { status: 'pending', active: false, n8n_workflow_id: null, last_error: /^n8n is unavailable/ })
})

t.test('PATCH of a deployed workflow with n8n down → 200, the change kept, pending until a deploy succeeds', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-dep-1')
  const w = (await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'v1', nodes: [trigger] } })).json()
  t.ok(c.scope.isDone())
  // PUT is idempotent: retried once (N8N_RETRIES=1), then given up.
  expectGet('n8n-dep-1')
  const down = n8n().put(`${API}/workflows/n8n-dep-1`).times(2).replyWithError(new Error('ECONNREFUSED'))
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { name: 'v2' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { name: 'v2', version: 2, status: 'pending', n8n_workflow_id: 'n8n-dep-1', last_error: /^n8n is unavailable: n8n request PUT \/workflows\/:id failed/ })
  t.ok(down.isDone())
  // n8n back: the next deploy (redeploy) sends the kept change to the same n8n workflow.
  const up = expectUpdate('n8n-dep-1')
  const again = await inject({ method: 'POST', url: `/workflows/${w.id}/redeploy`, headers: u.auth })
  t.equal(again.statusCode, 200, again.body)
  t.match(again.json(), { status: 'deployed', n8n_workflow_id: 'n8n-dep-1', last_error: null })
  t.match(String(up.bodies[0]?.name), /\] v2$/)
})

t.test('slow PUT on PATCH: timed out twice (one retry) → pending with last_error', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-slow-put')
  const w = (await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'slowput', nodes: [trigger] } })).json()
  t.ok(c.scope.isDone())
  expectGet('n8n-slow-put')
  const slow = n8n().put(`${API}/workflows/n8n-slow-put`).times(2).reply(slowly(n8nWorkflow('n8n-slow-put')))
  const res = await inject({ method: 'PATCH', url: `/workflows/${w.id}`, headers: u.auth, payload: { description: 'slow' } })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'pending', description: 'slow', last_error: /timed out after 500 ms/ })
  t.ok(slow.isDone(), 'both attempts made')
})

t.test('n8n rate limiting on activate → 503 with Retry-After', async (t) => {
  const u = await testUser()
  const c = expectCreate('n8n-429')
  const w = (await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'rl', nodes: [trigger] } })).json()
  t.ok(c.scope.isDone())
  expectGet('n8n-429')
  const limited = n8n().post(`${API}/workflows/n8n-429/activate`).times(2).reply(429, { message: 'slow down' }, { 'retry-after': '0' })
  const res = await inject({ method: 'POST', url: `/workflows/${w.id}/activate`, headers: u.auth })
  assertProblem(t, res, 503, 'n8n_unavailable')
  t.equal(res.headers['retry-after'], '1')
  t.ok(limited.isDone())
})

t.test('reads never need n8n', async (t) => {
  const u = await testUser()
  n8n().post(`${API}/workflows`).replyWithError(new Error('down'))
  const w = await createAndExpectPending(t, u, /^n8n is unavailable/)
  const before = unmatched.requests.length
  t.equal((await inject({ method: 'GET', url: '/workflows', headers: u.auth })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })).statusCode, 200)
  t.equal(unmatched.requests.length, before)
})

t.test('no answer carried the API key; no unexpected n8n call', async (t) => {
  t.ok(seen.bodies > 20)
  t.same(seen.leaks, [])
  t.same(unmatched.requests, [])
})
