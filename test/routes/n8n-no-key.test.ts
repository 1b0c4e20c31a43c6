// Issue 11, item 6: with N8N_API_KEY unset n8n is not called; answers and rows say why, and the
// boot warning says exactly that.
import { Writable } from 'node:stream'
import t from 'tap'
import nock from 'nock'
import { testUser } from '../helpers/app.ts'
import { nockedTestApp } from '../helpers/http.ts'

const lines: string[] = []
const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
const { inject, unmatched } = await nockedTestApp(t, { env: { N8N_API_KEY: '' }, logger: { level: 'warn', stream } })

t.test('the boot warning says n8n is not called', async (t) => {
  const warning = lines.map((l) => JSON.parse(l)).find((l) => /N8N_API_KEY/.test(l.msg))
  t.ok(warning, 'a warning names N8N_API_KEY')
  t.match(warning.msg, /^N8N_API_KEY is not set: n8n is not called until it is/)
})

t.test('create: 201 pending with "N8N_API_KEY is not set"; activate: 503 saying so; sync: failed saying so', async (t) => {
  const interceptor = nock('http://n8n.test').persist().intercept(/.*/, 'POST').reply(500)
  const u = await testUser()
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'no key', nodes: [{ name: 'Webhook', type: 'n8n-nodes-base.webhook' }] } })
  t.equal(res.statusCode, 201, res.body)
  t.match(res.json(), { status: 'pending', last_error: /N8N_API_KEY is not set/ })
  const act = await inject({ method: 'POST', url: `/workflows/${res.json().id}/activate`, headers: u.auth })
  t.equal(act.statusCode, 503)
  t.match(act.json().detail, /N8N_API_KEY is not set/)
  const sync = await inject({ method: 'POST', url: '/sync', headers: u.auth })
  t.match(sync.json(), { status: 'failed', errors: [{ code: 'n8n_unavailable', message: /N8N_API_KEY is not set/ }], error: /N8N_API_KEY is not set/ })
  t.notOk(interceptor.isDone(), 'n8n was never asked')
  t.same(unmatched.requests, [], 'no request left for n8n at all')
  nock.cleanAll()
})
