// Issue 11, item 5: U+0000 (which Postgres cannot store) in any string that enters — body values
// and keys at any depth, query, path parameters, headers — is 400 validation_failed naming the field.
import t from 'tap'
import nock from 'nock'
import { cronAuth, testUser } from '../helpers/app.ts'
import { assertValidation, nockedTestApp } from '../helpers/http.ts'
import { expectCreate } from '../helpers/n8n-nock.ts'

const { inject } = await nockedTestApp(t)
const u = await testUser()
const N = '\u0000'
const node = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'p' } }

expectCreate('nul-base')
const base = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'base', nodes: [node] } })
t.equal(base.statusCode, 201, base.body)
const id: string = base.json().id

// [label, body, the path named]
const bodies: Array<[string, Record<string, unknown>, string]> = [
  ['name', { name: `a${N}` }, 'body/name'],
  ['description', { description: `d${N}` }, 'body/description'],
  ['node name', { nodes: [{ ...node, name: `W${N}` }] }, 'body/nodes/0/name'],
  ['node type', { nodes: [{ ...node, type: `t${N}` }] }, 'body/nodes/0/type'],
  ['node parameter value', { nodes: [{ ...node, parameters: { path: `p${N}` } }] }, 'body/nodes/0/parameters/path'],
  ['nested node parameter value', { nodes: [{ ...node, parameters: { options: { list: ['ok', `x${N}`] } } }] }, 'body/nodes/0/parameters/options/list/1'],
  ['node parameter key', { nodes: [{ ...node, parameters: { [`k${N}`]: 'v' } }] }, 'body/nodes/0/parameters/k\\u0000'],
  ['extra node key', { nodes: [{ ...node, [`notes${N}`]: 'v' }] }, 'body/nodes/0/notes\\u0000'],
  ['connections key', { connections: { [`Webhook${N}`]: { main: [] } } }, 'body/connections/Webhook\\u0000'],
  ['connections value', { connections: { Webhook: { main: [[{ node: `Next${N}`, type: 'main', index: 0 }]] } } }, 'body/connections/Webhook/main/0/0/node'],
  ['settings.timezone', { settings: { timezone: `Europe/Berlin${N}` } }, 'body/settings/timezone'],
  ['settings.errorWorkflow', { settings: { errorWorkflow: `e${N}` } }, 'body/settings/errorWorkflow'],
  ['settings key', { settings: { [`timezone${N}`]: 'UTC' } }, 'body/settings/timezone\\u0000']
]

t.test('POST /workflows: each string field', async (t) => {
  for (const [label, over, path] of bodies) {
    const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'n', nodes: [node], ...over } })
    t.test(label, async (t) => { assertValidation(t, res, [path]) })
  }
})

t.test('PATCH /workflows/{id}: each string field', async (t) => {
  for (const [label, over, path] of bodies) {
    const res = await inject({ method: 'PATCH', url: `/workflows/${id}`, headers: u.auth, payload: over })
    t.test(label, async (t) => { assertValidation(t, res, [path]) })
  }
  const after = await inject({ method: 'GET', url: `/workflows/${id}`, headers: u.auth })
  t.equal(after.json().version, 1, 'nothing was changed')
})

t.test('headers, query, path parameters and the other bodies', async (t) => {
  const cases: Array<[string, Parameters<typeof inject>[0], string]> = [
    ['Idempotency-Key', { method: 'POST', url: '/workflows', headers: { ...u.auth, 'idempotency-key': `k${N}` }, payload: { name: 'n' } }, 'headers/idempotency-key'],
    ['If-Match', { method: 'PATCH', url: `/workflows/${id}`, headers: { ...u.auth, 'if-match': `"1${N}"` }, payload: { name: 'n' } }, 'headers/if-match'],
    ['Last-Event-ID', { method: 'GET', url: '/events', headers: { ...u.auth, 'last-event-id': `1${N}` } }, 'headers/last-event-id'],
    ['?cursor on /workflows', { method: 'GET', url: '/workflows?cursor=a%00', headers: u.auth }, 'querystring/cursor'],
    ['?status on /workflows', { method: 'GET', url: '/workflows?status=pending%00', headers: u.auth }, 'querystring/status'],
    ['?active on /workflows', { method: 'GET', url: '/workflows?active=true%00', headers: u.auth }, 'querystring/active'],
    ['?limit on /workflows', { method: 'GET', url: '/workflows?limit=1%00', headers: u.auth }, 'querystring/limit'],
    ['?cursor on executions', { method: 'GET', url: `/workflows/${id}/executions?cursor=%00`, headers: u.auth }, 'querystring/cursor'],
    ['?cursor on /sync/logs', { method: 'GET', url: '/sync/logs?cursor=x%00', headers: u.auth }, 'querystring/cursor'],
    ['?hours on /sync/stats', { method: 'GET', url: '/sync/stats?hours=1%00', headers: u.auth }, 'querystring/hours'],
    ['?since on /events', { method: 'GET', url: '/events?since=1%00', headers: u.auth }, 'querystring/since'],
    ['unknown query parameter', { method: 'GET', url: '/workflows?x%00=1', headers: u.auth }, 'querystring/x\\u0000'],
    ['{id} path parameter', { method: 'GET', url: '/workflows/%00', headers: u.auth }, 'params/id'],
    ['POST /sync workflow_ids', { method: 'POST', url: '/sync', headers: u.auth, payload: { workflow_ids: [`${id}${N}`] } }, 'body/workflow_ids/0'],
    ['POST /workflow-sync action', { method: 'POST', url: '/workflow-sync', headers: u.auth, payload: { action: `sync_all_workflows${N}` } }, 'body/action'],
    ['POST /workflow-sync extra field', { method: 'POST', url: '/workflow-sync', headers: cronAuth, payload: { action: 'cleanup_workflows', note: `n${N}` } }, 'body/note'],
    ['POST /cleanup key', { method: 'POST', url: '/cleanup', headers: cronAuth, payload: { [`dry_run${N}`]: true } }, 'body/dry_run\\u0000']
  ]
  for (const [label, req, path] of cases) {
    const res = await inject(req)
    t.test(label, async (t) => { assertValidation(t, res, [path]) })
  }
})

t.test('no n8n call was made for any of them', async (t) => {
  t.same(nock.pendingMocks(), [])
})

t.test('over a real socket, a NUL in a header (refused by Node\'s HTTP parser) is a problem too', async (t) => {
  const { buildApp } = await import('../../src/app.ts')
  const { testConfig } = await import('../helpers/app.ts')
  const { connect } = await import('node:net')
  const { PgliteDatabase } = await import('../../src/db/pglite-database.ts')
  const db = await PgliteDatabase.open(undefined)
  const app = await buildApp({ config: testConfig(), logger: false, testing: { db, migrate: false, swaggerUi: false } })
  t.teardown(async () => { await app.close(); await db.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const answer = await new Promise<string>((resolve) => {
    let out = ''
    const s = connect(port, '127.0.0.1', () => { s.write(`GET /health HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a${N}b\r\n\r\n`) })
    s.on('data', (d) => { out += String(d) })
    s.on('close', () => resolve(out))
    s.on('error', () => {})
  })
  t.match(answer, /^HTTP\/1\.1 400 /)
  t.match(answer, /content-type: application\/problem\+json/i)
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
  t.match(body, { code: 'validation_failed', status: 400, detail: /invalid character in a header/ })
})
