// Issue 8, item 3: the front end may still write first. The original Edge Function's front end
// inserted rows straight into Supabase (the Data API, as the user) and then asked for a sync. With
// the trust model a user's token may insert only the authored fields; status defaults to
// `pending`, and the user's next sync deploys the row. A direct edit of a deployed row (an authored
// field) sends it back to `pending`, and the next sync or redeploy brings n8n up to date.
import t from 'tap'
import { testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { nockedTestApp } from '../helpers/http.ts'
import { expectActivate, expectCreate, expectUpdate } from '../helpers/n8n-nock.ts'

const { h, inject, unmatched } = await nockedTestApp(t)
const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'x' } }

/** As PostgREST runs a request with the user's token: role authenticated, the user's claims. */
function asDataApi<T> (u: TestUser, sql: string, params: unknown[]): Promise<T[]> {
  return h.db.withUser({ sub: u.id, role: 'authenticated', aud: 'authenticated' }, async (tx) => (await tx.query<T>(sql, params)).rows)
}

t.test('a row inserted through the Data API (authored fields only) is deployed by the user\'s next sync', async (t) => {
  const u = await testUser()
  const [row] = await asDataApi<{ id: string, status: string, execution_count: number }>(u,
    `insert into public.mvp_workflows (user_id, name, description, nodes, connections, settings, active)
     values ($1, 'from the front end', 'inserted directly', $2::jsonb, '{}', '{}', true) returning id, status, execution_count`,
    [u.id, JSON.stringify([trigger])])
  t.match(row, { status: 'pending', execution_count: 0 }, 'the defaults: pending, no counts')
  const id = row!.id

  const created = expectCreate('front-1')
  const activated = expectActivate('front-1')
  const res = await inject({ method: 'POST', url: '/sync', headers: u.auth })
  t.equal(res.statusCode, 200, res.body)
  t.ok(created.scope.isDone(), 'the sync created it in n8n')
  t.ok(activated.isDone(), 'and activated it, as the row asked')
  t.match(created.bodies[0], { name: `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] from the front end`, staticData: { workflow_sync: { row_id: id, user_id: u.id } } })
  const got = await inject({ method: 'GET', url: `/workflows/${id}`, headers: u.auth })
  t.match(got.json(), { status: 'deployed', n8n_workflow_id: 'front-1', active: true, last_error: null })
  t.same(unmatched.requests, [], 'no other n8n call')
})

t.test('a Data API insert that sets a service field is refused; nothing is deployed', async (t) => {
  const u = await testUser()
  await t.rejects(asDataApi(u, "insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, 'forged', 'deployed', 'someone-elses')", [u.id]),
    { code: '42501' })
  const list = await inject({ method: 'GET', url: '/workflows', headers: u.auth })
  t.same(list.json().data, [])
})

t.test('a direct edit of a deployed row goes back to pending; redeploy (or the next sync) updates n8n', async (t) => {
  const u = await testUser()
  const created = expectCreate('front-2')
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'via the service', nodes: [trigger] } })
  t.equal(res.statusCode, 201, res.body)
  t.ok(created.scope.isDone())
  const w = res.json()
  t.match(w, { status: 'deployed', version: 1 })

  const [edited] = await asDataApi<{ status: string, version: number }>(u, "update public.mvp_workflows set name = 'edited directly' where id = $1 returning status, version", [w.id])
  t.same(edited, { status: 'pending', version: 2 }, 'the database moved the version on and left the row pending')
  await t.rejects(asDataApi(u, "update public.mvp_workflows set status = 'deployed' where id = $1", [w.id]), { code: '42501' }, 'and the user cannot mark it deployed')

  const updated = expectUpdate('front-2')
  const sync = await inject({ method: 'POST', url: '/sync', headers: u.auth })
  t.equal(sync.statusCode, 200, sync.body)
  t.ok(updated.scope.isDone(), 'the sync pushed the edit to n8n')
  t.match(updated.bodies[0], { name: `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] edited directly` })
  const got = await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: u.auth })
  t.match(got.json(), { status: 'deployed', n8n_workflow_id: 'front-2', name: 'edited directly', version: 2 })

  await asDataApi(u, "update public.mvp_workflows set description = 'again' where id = $1", [w.id])
  const again = expectUpdate('front-2')
  const redeploy = await inject({ method: 'POST', url: `/workflows/${w.id}/redeploy`, headers: u.auth })
  t.equal(redeploy.statusCode, 200, redeploy.body)
  t.ok(again.scope.isDone(), 'redeploy pushed it too')
  t.match(redeploy.json(), { status: 'deployed', description: 'again', version: 3 })
  t.same(unmatched.requests, [], 'no other n8n call')
})
