// Issue 11, item 1: a sync that could not reach n8n says so: `failed` (or `partial`), the n8n
// error in errors[], and `error` saying n8n is unavailable. The guide's scenario 3.
import t from 'tap'
import nock from 'nock'
import type { Test } from 'tap'
import { cronAuth, N8N_TEST_ORIGIN, testUser } from '../helpers/app.ts'
import { nockedTestApp } from '../helpers/http.ts'
import { API, expectCreate, n8n } from '../helpers/n8n-nock.ts'

const { inject } = await nockedTestApp(t)
const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'x' } }

/** n8n refuses every connection until cleaned. */
function n8nDown (): void {
  for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
    nock(N8N_TEST_ORIGIN).persist().intercept(/.*/, method).replyWithError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5678'), { code: 'ECONNREFUSED' }))
  }
}

async function pendingWorkflow (t: Test, auth: Record<string, string>): Promise<string> {
  n8nDown()
  const res = await inject({ method: 'POST', url: '/workflows', headers: auth, payload: { name: 'pending one', nodes: [trigger] } })
  t.equal(res.statusCode, 201, res.body)
  t.equal(res.json().status, 'pending')
  return res.json().id
}

function assertUnavailable (t: Test, body: Record<string, any>, ids: string[]): void {
  t.equal(body.status, 'failed', JSON.stringify(body))
  t.equal(body.workflows_synced, 0)
  t.equal(body.workflows_failed, ids.length)
  t.same(body.errors.map((e: any) => e.workflow_id).sort(), [...ids].sort())
  for (const e of body.errors) {
    t.equal(e.code, 'n8n_unavailable')
    t.match(e.message, /n8n/)
  }
  t.match(body.error, /^n8n is unavailable/, 'the answer says n8n is unavailable')
}

t.test('POST /sync with n8n down and a deploy pending: failed, n8n error in errors[]', async (t) => {
  const u = await testUser()
  const id = await pendingWorkflow(t, u.auth)
  const res = await inject({ method: 'POST', url: '/sync', headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  assertUnavailable(t, res.json(), [id])
  const logs = await inject({ method: 'GET', url: '/sync/logs', headers: u.auth })
  t.equal(logs.json().data[0].status, 'failed')
  t.match(logs.json().data[0].error, /^n8n is unavailable/)
})

t.test('{"action":"sync_all_workflows"} with n8n down: failed too', async (t) => {
  const u = await testUser()
  const id = await pendingWorkflow(t, u.auth)
  const res = await inject({ method: 'POST', url: '/workflow-sync', headers: u.auth, payload: { action: 'sync_all_workflows' } })
  t.equal(res.statusCode, 200, res.body)
  assertUnavailable(t, res.json(), [id])
})

t.test('a deployed workflow and n8n down: failed, the reason is n8n', async (t) => {
  const u = await testUser()
  expectCreate('n8n-deployed-1')
  const created = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'deployed one', nodes: [trigger] } })
  t.equal(created.json().status, 'deployed', created.body)
  nock.cleanAll()
  n8nDown()
  const res = await inject({ method: 'POST', url: '/sync', headers: u.auth })
  assertUnavailable(t, res.json(), [created.json().id])
  const all = await inject({ method: 'POST', url: '/workflow-sync', headers: cronAuth, payload: { action: 'sync_all_workflows' } })
  t.equal(all.statusCode, 200, all.body)
  t.not(all.json().status, 'success')
  t.match(all.json().error, /^n8n is unavailable/)
})

t.test('a pending deploy that succeeds counts as synced (n8n back)', async (t) => {
  const u = await testUser()
  const id = await pendingWorkflow(t, u.auth)
  nock.cleanAll()
  n8n().get(`${API}/workflows`).query(true).reply(200, { data: [], nextCursor: null })
  expectCreate('n8n-back-11')
  const res = await inject({ method: 'POST', url: '/sync', headers: u.auth, payload: { workflow_ids: [id] } })
  t.match(res.json(), { status: 'success', workflows_synced: 1, workflows_failed: 0, errors: [], error: null })
})
