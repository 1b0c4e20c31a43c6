// The typed client: its generated types are what the committed spec generates (like the spec's own
// freshness test), and the client works against the running service (a real port, real Postgres).
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { CLIENT_TYPES_PATH, generateClientTypes } from '../scripts/client-types.ts'
import { createWorkflowSyncClient, isProblem } from '../client/index.ts'
import type { WorkflowListItem } from '../client/index.ts'
import { buildTestApp, testUser } from './helpers/app.ts'

t.test('the committed client/schema.d.ts is what openapi/openapi.json generates', async (t) => {
  const committed = await readFile(CLIENT_TYPES_PATH, 'utf8').catch(() => '')
  t.ok(committed.length > 0, 'client/schema.d.ts exists')
  t.ok(committed === await generateClientTypes(), 'client/schema.d.ts is stale: run `npm run openapi` and commit it')
  for (const path of ['"/workflows"', '"/workflows/{id}/stats"', '"/stats"', '"/me"']) t.match(committed, path, `types for ${path}`)
})

t.test('the client against a running service', async (t) => {
  const ta = await buildTestApp()
  t.teardown(() => ta.close())
  await ta.app.listen({ port: 0, host: '127.0.0.1' })
  const addr = ta.app.server.address()
  const baseUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`
  const u = await testUser()
  let asked = 0
  const api = createWorkflowSyncClient({ baseUrl, getAccessToken: async () => { asked++; return u.token } })

  const me = await api.GET('/me')
  t.equal(me.response.status, 200)
  t.equal(me.data?.user_id, u.id, 'the verified caller')
  t.equal(asked, 1, 'the token is asked for per request')

  const seeded = await ta.db.query<{ id: string }>("insert into public.mvp_workflows (user_id, name, status) values ($1, 'from the client test', 'deployed') returning id", [u.id])
  const list = await api.GET('/workflows', { params: { query: { limit: 10 } } })
  t.equal(list.response.status, 200)
  const items: WorkflowListItem[] = list.data?.data ?? []
  t.same(items.map((w) => w.id), [seeded.rows[0]!.id])
  t.notOk('nodes' in items[0]!, 'a summary')
  const etag = list.response.headers.get('etag')
  t.ok(etag, 'an ETag')

  const one = await api.GET('/workflows/{id}', { params: { path: { id: seeded.rows[0]!.id } } })
  t.equal(one.data?.name, 'from the client test')
  t.same(one.data?.nodes, [], 'the full workflow')

  const stats = await api.GET('/workflows/{id}/stats', { params: { path: { id: seeded.rows[0]!.id }, query: { bucket: 'day' } } })
  t.equal(stats.data?.buckets.length, 30)
  t.equal(stats.data?.totals.total, 0)

  const bad = await api.GET('/workflows', { params: { query: { limit: 1000 } } })
  t.equal(bad.response.status, 400)
  t.ok(isProblem(bad.error), 'the problem answer')
  t.equal(bad.error?.code, 'validation_failed')

  const anonymous = createWorkflowSyncClient({ baseUrl, getAccessToken: () => null })
  const denied = await anonymous.GET('/me')
  t.equal(denied.response.status, 401)
  t.equal(denied.error?.code, 'invalid_token')
})
