// End to end against a REAL n8n: a row pointed (by a superuser's SQL) at another user's n8n
// workflow, and at the team's own unprefixed one: PATCH, activate, deactivate, the user's sync,
// /sync/all and DELETE leave that n8n workflow untouched (same updatedAt, active flag, name and
// executions in n8n), count none of its executions, and say why. A redeploy then gives the row its
// own workflow back (found by its marker).
//
//   N8N_VERSIONS=1.123.5 npx tap --jobs=1 --timeout=1500 --disable-coverage test-e2e/ownership.test.ts
import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createTestDatabase } from '../test/helpers/db.ts'
import type { TestDatabase } from '../test/helpers/db.ts'
import { mintUserToken, TEST_JWT_SECRET } from '../test/helpers/tokens.ts'
import { DEFAULT_N8N_VERSIONS, n8nApi, startN8n, triggerWebhook, waitFor, FINAL } from './n8n-harness.ts'
import type { N8nApi, N8nInstance } from './n8n-harness.ts'

const versions = (process.env.N8N_VERSIONS ?? '').split(/[\s,]+/).filter(Boolean)
const VERSIONS = versions.length ? versions : DEFAULT_N8N_VERSIONS
const FIRST_PORT = Number(process.env.N8N_OWNERSHIP_FIRST_PORT ?? 5733)
const CRON_SECRET = 'e2e-ownership-cron-secret-0123456789abcdef'
t.setTimeout(VERSIONS.length * 300_000)

type Json = any

function webhookWorkflow (name: string, path: string): Json {
  return {
    name,
    nodes: [{ id: randomUUID(), name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], webhookId: randomUUID(), parameters: { httpMethod: 'POST', path, responseMode: 'onReceived' } }],
    connections: {},
    settings: { executionOrder: 'v1' }
  }
}

async function finalRuns (api: N8nApi, workflowId: string, count: number): Promise<Json[]> {
  return await waitFor(`${count} final run(s) of ${workflowId}`, async () => {
    const r = await api.get('/executions', { workflowId, limit: 250 })
    const list = r.body.data as Json[]
    return list.length === count && list.every((e) => FINAL.has(e.status)) && list
  }, 30_000)
}

VERSIONS.forEach((version, i) => {
  const port = FIRST_PORT + i
  t.test(`ownership checks against n8n ${version}`, async (t) => {
    let n8n: N8nInstance | undefined
    let tdb: TestDatabase | undefined
    let app: FastifyInstance | undefined
    t.teardown(async () => {
      await app?.close().catch(() => {})
      await tdb?.drop().catch(() => {})
      await n8n?.stop().catch(() => {})
    })
    n8n = await startN8n({ version, port })
    tdb = await createTestDatabase('ws_e2e_own')
    const db = tdb.db
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: tdb.url,
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      N8N_API_URL: n8n.apiUrl,
      N8N_API_KEY: n8n.apiKey,
      CRON_SECRET,
      RATE_LIMIT_MAX: '60000'
    })
    app = await buildApp({ config, logger: false })
    const api = n8nApi(n8n.apiUrl, n8n.apiKey)
    const a = randomUUID()
    const b = randomUUID()
    const auth = async (sub: string): Promise<Record<string, string>> => ({ authorization: `Bearer ${await mintUserToken({ secret: TEST_JWT_SECRET, sub, email: `${sub.slice(0, 8)}@example.com` })}` })
    const aAuth = await auth(a)
    const bAuth = await auth(b)
    const call = async (method: string, url: string, headers: Record<string, string>, payload?: Json): Promise<{ status: number, body: Json }> => {
      const res = await app!.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) })
      return { status: res.statusCode, body: res.body === '' ? null : res.json() }
    }

    // A's and B's workflows through the service; the team's own workflow straight in n8n.
    const wa = await call('POST', '/workflows', aAuth, webhookWorkflow('a flow', `own-a-${port}`))
    t.equal(wa.status, 201, JSON.stringify(wa.body))
    const wb = await call('POST', '/workflows', bAuth, { ...webhookWorkflow('b flow', `own-b-${port}`), active: true })
    t.equal(wb.status, 201, JSON.stringify(wb.body))
    t.match(wb.body, { status: 'deployed', active: true })
    // Another user's n8n workflow that no row of theirs holds (the unique n8n id index keeps a row
    // from naming one that is): B's prefix and B's row marker, as a copy made in n8n would carry.
    const bTag = `[USR-${b.replace(/-/g, '').slice(0, 8)}]`
    const copy = await api.post('/workflows', { ...webhookWorkflow(`${bTag} b flow (copy)`, `copy-b-${port}`), staticData: { workflow_sync: { row_id: wb.body.id, user_id: b } } })
    t.equal(copy.status, 200, JSON.stringify(copy.body))
    t.equal((await api.post(`/workflows/${copy.body.id}/activate`)).status, 200)
    const team = await api.post('/workflows', webhookWorkflow('Team: billing export', `team-${port}`))
    t.equal(team.status, 200, JSON.stringify(team.body))
    t.equal((await api.post(`/workflows/${team.body.id}/activate`)).status, 200)
    for (const path of [`own-b-${port}`, `copy-b-${port}`, `copy-b-${port}`, `team-${port}`, `team-${port}`, `team-${port}`]) {
      t.equal((await triggerWebhook(n8n.baseUrl, path, { x: 1 })).status, 200)
    }
    await finalRuns(api, wb.body.n8n_workflow_id, 1)
    await finalRuns(api, copy.body.id, 2)
    await finalRuns(api, team.body.id, 3)

    const targets = [
      { label: 'another user\'s workflow', n8nId: copy.body.id as string, why: /marker names another row/, runs: 2 },
      { label: 'the team\'s unprefixed workflow', n8nId: team.body.id as string, why: /carries no workflow_sync marker/, runs: 3 }
    ]
    for (const target of targets) {
      await t.test(`a row pointed at ${target.label}`, async (t: Test) => {
        const before = (await api.get(`/workflows/${target.n8nId}`)).body
        const point = async (): Promise<void> => {
          await db.query("update mvp_workflows set n8n_workflow_id = $2, status = 'deployed', last_error = null where id = $1", [wa.body.id, target.n8nId])
        }
        await point()
        const patch = await call('PATCH', `/workflows/${wa.body.id}`, aAuth, { name: 'a renamed' })
        t.equal(patch.status, 200, JSON.stringify(patch.body))
        t.match(patch.body, { status: 'missing_in_n8n', last_error: target.why })
        await point()
        const on = await call('POST', `/workflows/${wa.body.id}/activate`, aAuth)
        t.equal(on.status, 409)
        t.match(on.body, { code: 'conflict', detail: target.why })
        const off = await call('POST', `/workflows/${wa.body.id}/deactivate`, aAuth)
        t.equal(off.status, 409)
        t.match(off.body.detail, target.why)
        await point()
        const sync = await call('POST', '/sync', aAuth, {})
        t.equal(sync.status, 200)
        t.match(sync.body, { status: 'failed', executions_ingested: 0, errors: [{ workflow_id: wa.body.id, code: 'conflict', message: target.why }] })
        await point()
        const all = await call('POST', '/sync/all', { authorization: `Bearer ${CRON_SECRET}` })
        t.equal(all.status, 200)
        t.match(all.body.errors, [{ workflow_id: wa.body.id, code: 'conflict', message: target.why }])
        t.equal(all.body.errors.length, 1, 'B\'s row syncs normally')
        await point()
        const del = await call('DELETE', `/workflows/${wa.body.id}`, aAuth)
        t.equal(del.status, 409)
        t.match(del.body.detail, /the row was kept/)

        const after = (await api.get(`/workflows/${target.n8nId}`))
        t.equal(after.status, 200, 'n8n\'s workflow still exists')
        t.same({ name: after.body.name, active: after.body.active, updatedAt: after.body.updatedAt, nodes: after.body.nodes, staticData: after.body.staticData },
          { name: before.name, active: true, updatedAt: before.updatedAt, nodes: before.nodes, staticData: before.staticData }, 'untouched in n8n (same name, active, updatedAt, nodes, marker)')
        t.equal((await api.get('/executions', { workflowId: target.n8nId, limit: 250 })).body.data.length, target.runs, 'its executions are all still in n8n')
        const row = (await db.query<Json>('select execution_count::int as n, status, last_error from mvp_workflows where id = $1', [wa.body.id])).rows[0]
        t.match(row, { n: 0, status: 'missing_in_n8n', last_error: target.why })
        t.same((await db.query('select 1 from workflow_executions where workflow_id = $1', [wa.body.id])).rows, [], 'none in A\'s ledger')
      })
    }
    const bRow = await call('GET', `/workflows/${wb.body.id}`, bAuth)
    t.match(bRow.body, { execution_count: 1, status: 'deployed', active: true }, 'B\'s row counts its own workflow\'s run, not the copy\'s')

    const redeploy = await call('POST', `/workflows/${wa.body.id}/redeploy`, aAuth)
    t.equal(redeploy.status, 200, JSON.stringify(redeploy.body))
    t.match(redeploy.body, { status: 'deployed', n8n_workflow_id: wa.body.n8n_workflow_id, last_error: null }, 'redeploy adopted A\'s own workflow by its marker')
    const own = await api.get(`/workflows/${wa.body.n8n_workflow_id}`)
    t.match(own.body.name, /\] a renamed$/)
  })
})
