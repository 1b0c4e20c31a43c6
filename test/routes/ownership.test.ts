// Never act on an n8n workflow that is not the row's: a row pointed (by a superuser's SQL) at
// another user's n8n workflow, or at one without the marker and prefix, is drift. PATCH, activate,
// deactivate, sync (the user's and /sync/all's instance scan) and DELETE leave that workflow
// untouched (n8n sees GETs only) and say why; none of its executions are counted.
import t from 'tap'
import type { Test } from 'tap'
import nock from 'nock'
import { cronAuth, testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { API, expectCreate, expectGet, expectUpdate, holds, n8n, n8nWorkflow } from '../helpers/n8n-nock.ts'
import { FakeN8n } from '../helpers/sync-fake-n8n.ts'
import { notOwnedReason, identityOf } from '../../src/services/ownership.ts'

const { h, inject, unmatched } = await nockedTestApp(t)

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0] as [number, number], parameters: { path: 'x' } }
const tag = (u: TestUser): string => `[USR-${u.id.replace(/-/g, '').slice(0, 8)}]`

async function createDeployed (u: TestUser, n8nId: string): Promise<{ id: string }> {
  const c = expectCreate(n8nId)
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: `wf ${n8nId}`, nodes: [trigger] } })
  if (res.statusCode !== 201 || !c.scope.isDone()) throw new Error(`create failed: ${res.body}`)
  return res.json()
}

/** A superuser's update: the row now names n8n workflow `n8nId`, as if deployed. */
async function pointAt (rowId: string, n8nId: string): Promise<void> {
  await h.db.query("update mvp_workflows set n8n_workflow_id = $2, status = 'deployed', last_error = null where id = $1", [rowId, n8nId])
}

async function row (id: string): Promise<Record<string, any>> {
  return (await h.db.query<Record<string, any>>('select * from mvp_workflows where id = $1', [id])).rows[0] ?? {}
}

t.test('notOwnedReason: marker and prefix both required; the reason never names the other row', async (t) => {
  const r = { id: '11111111-1111-4111-8111-111111111111', user_id: 'abcdef01-2345-4678-9abc-def012345678' }
  const mine = { workflow_sync: { row_id: r.id, user_id: r.user_id } }
  t.equal(notOwnedReason('1', r, identityOf({ name: '[USR-abcdef01] x', staticData: mine })), null)
  t.equal(notOwnedReason('1', r, identityOf({ name: '[USR-ABCDEF01] x', staticData: mine })), null, 'hex case does not matter')
  t.match(notOwnedReason('1', r, identityOf({ name: '[USR-abcdef01] x', staticData: null })), /carries no workflow_sync marker/)
  t.match(notOwnedReason('1', r, identityOf({ name: '[USR-abcdef01] x', staticData: { workflow_sync: 'x' } })), /carries no workflow_sync marker/)
  const other = notOwnedReason('1', r, identityOf({ name: '[USR-abcdef01] x', staticData: { workflow_sync: { row_id: '22222222-2222-4222-8222-222222222222', user_id: r.user_id } } }))
  t.match(other, /marker names another row/)
  t.notMatch(other, /22222222/, 'the other row id is not revealed')
  t.match(notOwnedReason('1', r, identityOf({ name: '[USR-abcdef01] x', staticData: { workflow_sync: { row_id: r.id, user_id: '33333333-3333-4333-8333-333333333333' } } })), /marker names another row/)
  t.match(notOwnedReason('1', r, identityOf({ name: 'team flow', staticData: mine })), /does not start with the owner's \[USR-abcdef01\] prefix/)
  t.match(notOwnedReason('1', r, identityOf({ name: 'x [USR-abcdef01]', staticData: mine })), /prefix/)
})

interface Case {
  label: string
  /** Sets up n8n's foreign workflow in the fake; answers its id. */
  foreign (fake: FakeN8n, other: { id: string, user: TestUser }): string
  why: RegExp
}

const cases: Case[] = [
  {
    label: 'another user\'s n8n workflow',
    foreign (fake, other) {
      const id = 'n8n-other-user'
      fake.addWorkflow(id, `${tag(other.user)} wf`, false, { workflow_sync: { row_id: other.id, user_id: other.user.id } })
      return id
    },
    why: /not this row's \(its workflow_sync marker names another row\); nothing was done to it in n8n/
  },
  {
    label: 'an unprefixed n8n workflow without a marker (the team\'s own)',
    foreign (fake) {
      const id = 'n8n-team-own'
      fake.addWorkflow(id, 'Team: billing export', false, null)
      return id
    },
    why: /not this row's \(it carries no workflow_sync marker\); nothing was done to it in n8n/
  }
]

for (const c of cases) {
  t.test(`a row pointed at ${c.label}: PATCH, activate, deactivate, sync, /sync/all and DELETE leave it untouched and say why`, async (t) => {
    const a = await testUser()
    const b = await testUser()
    const mine = await createDeployed(a, `own-a-${c.label.length}`)
    const theirs = await createDeployed(b, `own-b-${c.label.length}`)
    nock.cleanAll()

    const fake = new FakeN8n()
    fake.intercept()
    const foreignId = c.foreign(fake, { id: theirs.id, user: b })
    fake.runMany(foreignId, 5, 'success')
    await pointAt(mine.id, foreignId)
    const before = unmatched.requests.length

    const assertUntouched = (t: Test, what: string): void => {
      const acted = fake.calls.filter((x) => x.method !== 'GET')
      t.same(acted, [], `${what}: no activate/deactivate reached n8n`)
      t.same(unmatched.requests.slice(before), [], `${what}: no PUT or DELETE (or anything else) reached n8n`)
      t.equal(fake.workflows.get(foreignId)?.active, false, `${what}: n8n's workflow is as it was`)
      t.ok(fake.workflows.has(foreignId), `${what}: n8n's workflow still exists`)
    }
    const assertNotCounted = async (t: Test, what: string): Promise<void> => {
      const r = await row(mine.id)
      t.match(r, { execution_count: '0', successful_executions: '0', failed_executions: '0', last_execution_at: null }, `${what}: no executions counted`)
      const ledger = (await h.db.query('select 1 from workflow_executions where workflow_id = $1 or n8n_workflow_id = $2', [mine.id, foreignId])).rows
      t.same(ledger, [], `${what}: none imported into the ledger`)
    }
    const assertDrift = async (t: Test, what: string): Promise<void> => {
      const r = await row(mine.id)
      t.equal(r.status, 'missing_in_n8n', `${what}: the row is drift`)
      t.match(r.last_error, c.why, `${what}: last_error says why`)
    }

    await t.test('user sync', async (t) => {
      fake.intercept() // the file's afterEach cleans nock after every subtest
      const res = await inject({ method: 'POST', url: '/sync', headers: a.auth, payload: {} })
      t.equal(res.statusCode, 200, res.body)
      const body = res.json()
      t.match(body, { status: 'failed', workflows_synced: 0, workflows_failed: 1, executions_ingested: 0 })
      t.equal(body.errors.length, 1)
      t.match(body.errors[0], { workflow_id: mine.id, code: 'conflict', message: c.why })
      t.match(body.errors[0].message, /its executions were not counted/)
      t.notOk(fake.executionCalls(foreignId).length, 'its executions were not even listed')
      await assertDrift(t, 'user sync')
      await assertNotCounted(t, 'user sync')
      assertUntouched(t, 'user sync')
      const log = (await h.db.query<{ details: any }>('select details from sync_logs where id = $1', [body.sync_log_id])).rows[0]
      t.match(log?.details.drift, [{ workflow_id: mine.id, n8n_workflow_id: foreignId, kind: 'missing_in_n8n', repaired: false, reason: c.why }])
    })

    await t.test('/sync/all (instance scan: the foreign workflow\'s executions are in the scanned list)', async (t) => {
      fake.intercept() // the file's afterEach cleans nock after every subtest
      await pointAt(mine.id, foreignId)
      fake.runMany(foreignId, 3, 'error')
      const res = await inject({ method: 'POST', url: '/sync/all', headers: cronAuth })
      t.equal(res.statusCode, 200, res.body)
      const body = res.json()
      t.equal(body.executions_ingested, 0, 'nothing ingested for anyone (b\'s row points at its own n8n id, absent from this fake)')
      t.match(body.errors.find((e: { workflow_id: string }) => e.workflow_id === mine.id), { code: 'conflict', message: c.why })
      t.ok(fake.executionCalls().some((x) => !x.query.has('workflowId') && x.query.get('status') === null), 'the instance list was read')
      await assertDrift(t, '/sync/all')
      await assertNotCounted(t, '/sync/all')
      assertUntouched(t, '/sync/all')
    })

    await t.test('activate and deactivate: 409 saying why', async (t) => {
      fake.intercept() // the file's afterEach cleans nock after every subtest
      await pointAt(mine.id, foreignId)
      const on = assertProblem(t, await inject({ method: 'POST', url: `/workflows/${mine.id}/activate`, headers: a.auth }), 409, 'conflict')
      t.match(on.detail, c.why)
      t.match(on.detail, /POST \/workflows\/.+\/redeploy gives this row its own n8n workflow/)
      await assertDrift(t, 'activate')
      t.equal((await row(mine.id)).active, false, 'the row stays inactive')
      const off = assertProblem(t, await inject({ method: 'POST', url: `/workflows/${mine.id}/deactivate`, headers: a.auth }), 409, 'conflict')
      t.match(off.detail, c.why, 'also once the row is drift')
      assertUntouched(t, 'activate/deactivate')
    })

    await t.test('PATCH: the change is kept, n8n untouched, the row drift with last_error', async (t) => {
      fake.intercept() // the file's afterEach cleans nock after every subtest
      await pointAt(mine.id, foreignId)
      const res = await inject({ method: 'PATCH', url: `/workflows/${mine.id}`, headers: a.auth, payload: { name: 'renamed' } })
      t.equal(res.statusCode, 200, res.body)
      t.match(res.json(), { name: 'renamed', status: 'missing_in_n8n', n8n_workflow_id: foreignId, last_error: c.why })
      assertUntouched(t, 'PATCH')
    })

    await t.test('DELETE: 409 saying why, the row kept', async (t) => {
      fake.intercept() // the file's afterEach cleans nock after every subtest
      await pointAt(mine.id, foreignId)
      const del = assertProblem(t, await inject({ method: 'DELETE', url: `/workflows/${mine.id}`, headers: a.auth }), 409, 'conflict')
      t.match(del.detail, c.why)
      t.match(del.detail, /the row was kept/)
      t.ok(await row(mine.id), 'the row is still there')
      await assertDrift(t, 'DELETE')
      assertUntouched(t, 'DELETE')
    })

    t.ok(fake.calls.some((x) => x.method === 'GET' && x.path === `/workflows/${foreignId}`), 'the service looked at n8n\'s copy (GET) before each action')
  })
}

t.test('redeploy of such a row gives it its own n8n workflow (adopted by marker); the foreign one untouched', async (t) => {
  const a = await testUser()
  const mine = await createDeployed(a, 'own-a-redeploy')
  await pointAt(mine.id, 'n8n-someone-else')
  const before = unmatched.requests.length
  const look = expectGet('n8n-someone-else', { name: 'Team flow', staticData: null })
  // The row's own workflow (created above) is still in n8n: found by its marker and updated.
  const own = n8nWorkflow('own-a-redeploy', { name: `${tag(a)} wf own-a-redeploy`, staticData: { workflow_sync: { row_id: mine.id, user_id: a.id } } })
  const search = n8n().get(`${API}/workflows`).query(true).reply(200, { data: [own], nextCursor: null })
  const up = expectUpdate('own-a-redeploy')
  const res = await inject({ method: 'POST', url: `/workflows/${mine.id}/redeploy`, headers: a.auth })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { status: 'deployed', n8n_workflow_id: 'own-a-redeploy', last_error: null })
  t.ok(look.isDone() && search.isDone() && up.scope.isDone())
  t.same(unmatched.requests.slice(before), [], 'nothing else reached n8n (no PUT/DELETE of the foreign id)')
})

t.test('a row whose n8n copy is its own is acted on as before (GET, then the action)', async (t) => {
  const a = await testUser()
  const mine = await createDeployed(a, 'own-a-normal')
  holds('own-a-normal', { id: mine.id, user_id: a.id }, 'wf own-a-normal')
  expectGet('own-a-normal')
  const del = n8n().delete(`${API}/workflows/own-a-normal`).reply(200, n8nWorkflow('own-a-normal'))
  t.equal((await inject({ method: 'DELETE', url: `/workflows/${mine.id}`, headers: a.auth })).statusCode, 204)
  t.ok(del.isDone(), 'deleted in n8n')
})
