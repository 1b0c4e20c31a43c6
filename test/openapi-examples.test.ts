// Issue 11, item 3: every operation's example, taken from the generated spec as Swagger UI sends
// it, answers 2xx on a fresh start (empty database, n8n faked by nock, the demo-style user token).
// Path ids are the one placeholder: {id} is the workflow the createWorkflow example made.
import t from 'tap'
import nock from 'nock'
import { buildTestApp, cronAuth, N8N_TEST_ORIGIN, testUser } from './helpers/app.ts'
import { n8nWorkflow } from './helpers/n8n-nock.ts'

nock.disableNetConnect()
nock.enableNetConnect('127.0.0.1')
const h = await buildTestApp({ env: { RATE_LIMIT_MAX: '100000' } })
t.teardown(async () => { nock.cleanAll(); nock.enableNetConnect(); await h.close() })

// An n8n that says yes: one workflow id, holding what the create sent (name, nodes and the
// staticData marker the ownership check reads), activation state kept, empty execution lists.
const active = new Map<string, boolean>()
let heldWorkflow: { name: string, staticData: unknown, nodes: unknown[] } = { name: 'wf', staticData: null, nodes: [] }
// nock 15 hands reply functions the fetch Request.
const urlOf = (req: unknown): string => (typeof req === 'string' ? req : (req as Request).url)
const idOf = (req: unknown): string => decodeURIComponent(/\/workflows\/([^/?]+)/.exec(urlOf(req))?.[1] ?? '')
const held = (id: string) => n8nWorkflow(id, { ...heldWorkflow, staticData: heldWorkflow.staticData as null, nodes: heldWorkflow.nodes as [], active: active.get(id) ?? false })
nock(N8N_TEST_ORIGIN).persist()
  .get(/\/api\/v1\/executions/).reply(200, { data: [], nextCursor: null })
  .get(/\/api\/v1\/workflows\?/).reply(() => [200, { data: heldWorkflow.staticData ? [held('n8n-example-1')] : [], nextCursor: null }])
  .get(/\/api\/v1\/workflows\/[^/?]+$/).reply((uri: string) => [200, held(idOf(uri))])
  // The body matcher sees the parsed body (reply functions get only the request in nock 15); like
  // n8n, a body without staticData leaves the stored one as it was.
  .post('/api/v1/workflows', (b: Record<string, unknown>) => { heldWorkflow = { name: typeof b?.name === 'string' ? b.name : heldWorkflow.name, staticData: b?.staticData ?? heldWorkflow.staticData, nodes: Array.isArray(b?.nodes) ? b.nodes : heldWorkflow.nodes }; return true })
  .reply(() => [200, held('n8n-example-1')])
  .put(/\/api\/v1\/workflows\/[^/]+$/, (b: Record<string, unknown>) => { heldWorkflow = { name: typeof b?.name === 'string' ? b.name : heldWorkflow.name, staticData: b?.staticData ?? heldWorkflow.staticData, nodes: Array.isArray(b?.nodes) ? b.nodes : heldWorkflow.nodes }; return true })
  .reply((uri: string) => [200, held(idOf(uri))])
  .post(/\/api\/v1\/workflows\/[^/]+\/(activate|deactivate)$/).reply((uri: string) => {
    const on = urlOf(uri).endsWith('/activate')
    active.set(idOf(uri), on)
    return [200, held(idOf(uri))]
  })
  .delete(/\/api\/v1\/workflows\/[^/]+$/).reply((uri: string) => [200, held(idOf(uri))])
  // The example workflow's Webhook trigger (POST /webhook/…), called by POST /workflows/{id}/run.
  .post(/^\/webhook\//).reply(200, { message: 'Workflow was started' })

const spec = h.app.swagger() as Record<string, any>
const user = await testUser()
const cronOnly = new Set(['syncAllWorkflows', 'runCleanup'])

interface Op { method: string, path: string, op: Record<string, any> }
const ops: Op[] = []
for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
  for (const [method, op] of Object.entries<any>(item)) ops.push({ method: method.toUpperCase(), path, op })
}
// As a person in Swagger UI would: create, try everything (activate before run: n8n serves a
// webhook only while its workflow is active), deactivate, then delete.
const order: Record<string, number> = { createWorkflow: 0, deactivateWorkflow: 2, deleteWorkflow: 3 }
const rank = (o: Op): number => order[o.op.operationId as string] ?? 1
ops.sort((a, b) => rank(a) - rank(b))

let workflowId = ''

t.test('every operation\'s example answers 2xx on a fresh start', async (t) => {
  t.ok(ops.length >= 20, `operations: ${ops.length}`)
  t.equal(ops[0]?.op.operationId, 'createWorkflow')
  for (const { method, path, op } of ops) {
    const where = `${method} ${path} (${op.operationId})`
    const headers: Record<string, string> = {}
    // Optional credentials ({} among the alternatives, /metrics): sent without, as from loopback.
    const needsAuth = op.security?.length > 0 && !op.security.some((s: object) => Object.keys(s).length === 0)
    if (needsAuth) {
      Object.assign(headers, cronOnly.has(op.operationId) ? cronAuth : user.auth)
    }
    const query = new URLSearchParams()
    let url = path
    for (const p of op.parameters ?? []) {
      if (p.in === 'path') {
        t.equal(p.name, 'id', `${where}: the only path parameter is a workflow id`)
        url = url.replace(`{${p.name}}`, workflowId)
      } else if (p.example !== undefined) {
        if (p.in === 'query') query.set(p.name, String(p.example))
        if (p.in === 'header') headers[p.name] = String(p.example)
      } else {
        t.notOk(p.required, `${where}: required parameter ${p.name} has an example`)
      }
    }
    const media = op.requestBody?.content?.['application/json']
    if (op.requestBody?.required) t.ok(media?.example !== undefined, `${where}: a required body has an example`)
    if (media?.example !== undefined) headers['content-type'] = 'application/json'
    const full = query.size > 0 ? `${url}?${query}` : url

    if (op.operationId === 'streamEvents') {
      // A stream never ends: listen for real, read the status and the first event, hang up.
      const address = await h.app.listen({ port: 0, host: '127.0.0.1' })
      const ac = new AbortController()
      const res = await fetch(`${address}${full}`, { headers, signal: ac.signal })
      t.equal(res.status, 200, where)
      t.match(res.headers.get('content-type'), /^text\/event-stream/)
      const reader = res.body!.getReader()
      const first = new TextDecoder().decode((await reader.read()).value)
      t.match(first, /event: ready/, `${where}: the stream starts`)
      ac.abort()
      continue
    }
    const res = await h.app.inject({ method: method as 'GET', url: full, headers, ...(media?.example !== undefined ? { payload: JSON.stringify(media.example) } : {}) })
    t.ok(res.statusCode >= 200 && res.statusCode < 300, `${where} → ${res.statusCode} ${res.body.slice(0, 300)}`)
    if (op.operationId === 'createWorkflow') {
      const w = res.json()
      workflowId = w.id
      t.match(w, { status: 'deployed', n8n_workflow_id: 'n8n-example-1' }, 'the example workflow deploys')
      t.equal(w.nodes[0]?.type, 'n8n-nodes-base.webhook', 'a webhook workflow, not an empty definition')
    }
    if (['syncMyWorkflows', 'syncAllWorkflows', 'edgeFunctionCompat'].includes(op.operationId)) {
      t.match(res.json(), { status: 'success', errors: [] }, `${where}: the sync succeeds`)
    }
  }
})
