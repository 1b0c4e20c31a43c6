// End to end, the live tail against a REAL n8n, both majors (N8N_VERSIONS, default 1.123.5 and
// 2.30.8): a workflow with a Webhook trigger is created and activated through this service; it is
// then run (1) by calling its webhook on n8n directly and (2) through POST /workflows/{id}/run,
// and WITHOUT ANY CALL TO /sync the new count shows in GET /workflows/{id} and the change arrives
// on the owner's GET /events stream.
//
//   npx tap --jobs=1 --timeout=1500 --disable-coverage test-e2e/live-tail.test.ts
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createTestDatabase } from '../test/helpers/db.ts'
import { mintUserToken, TEST_JWT_SECRET } from '../test/helpers/tokens.ts'
import { DEFAULT_N8N_VERSIONS, startN8n, triggerWebhook, waitFor } from './n8n-harness.ts'

const versions = (process.env.N8N_VERSIONS ?? '').split(/[\s,]+/).filter(Boolean)
const VERSIONS = versions.length ? versions : DEFAULT_N8N_VERSIONS
const FIRST_PORT = Number(process.env.N8N_LIVE_FIRST_PORT ?? 5695)
t.setTimeout(VERSIONS.length * 300_000)

/** The events of one SSE stream, parsed as they arrive. */
function openEvents (url: string, token: string): { events: Array<{ event: string, data: any }>, close(): void } {
  const events: Array<{ event: string, data: any }> = []
  const ctl = new AbortController()
  void (async () => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ctl.signal })
    const reader = res.body!.getReader()
    const dec = new TextDecoder()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += dec.decode(value, { stream: true })
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const ev = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data !== undefined) {
          try { events.push({ event: ev, data: JSON.parse(data) }) } catch { events.push({ event: ev, data }) }
        }
      }
    }
  })().catch(() => {})
  return { events, close: () => ctl.abort() }
}

VERSIONS.forEach((version, i) => {
  t.test(`n8n ${version}: counts and events follow n8n without /sync`, async (tt) => {
    const n8n = await startN8n({ version, port: FIRST_PORT + i, startTimeoutMs: 300_000 })
    tt.teardown(() => n8n.stop())
    const tdb = await createTestDatabase('ws_e2e_live')
    tt.teardown(() => tdb.drop())
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: tdb.url,
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      N8N_API_URL: n8n.apiUrl,
      N8N_API_KEY: n8n.apiKey,
      LIVE_SYNC_INTERVAL_MS: '500',
      CLEANUP_INTERVAL_MINUTES: '0',
      RATE_LIMIT_MAX: '60000'
    })
    tt.equal(config.n8nWebhookUrl, `${n8n.baseUrl}/webhook`, 'N8N_WEBHOOK_URL derived from N8N_API_URL')
    const app: FastifyInstance = await buildApp({ config, logger: false })
    tt.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    await waitFor('the tail leads', async () => app.liveTail?.status().state === 'tailing', 60_000)

    const userId = randomUUID()
    const token = await mintUserToken({ sub: userId })
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const path = `live-${version.replace(/\W/g, '-')}-${randomUUID().slice(0, 8)}`
    const created = await fetch(`${base}/workflows`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        name: `live ${version}`,
        nodes: [{ id: randomUUID(), name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], webhookId: randomUUID(), parameters: { httpMethod: 'POST', path, responseMode: 'onReceived' } }],
        connections: {},
        settings: { executionOrder: 'v1' }
      })
    })
    const wf = await created.json() as any
    tt.equal(created.status, 201, JSON.stringify(wf))
    tt.equal(wf.status, 'deployed')
    const act = await fetch(`${base}/workflows/${wf.id}/activate`, { method: 'POST', headers: { authorization: auth.authorization } })
    tt.equal(act.status, 200, 'activated')

    const stream = openEvents(`${base}/events`, token)
    tt.teardown(() => stream.close())
    await waitFor('the event stream is open (its `ready` event)', async () => stream.events.some((e) => e.event === 'ready'))

    const countOf = async (): Promise<number> => {
      const r = await fetch(`${base}/workflows/${wf.id}`, { headers: { authorization: auth.authorization } })
      return ((await r.json()) as any).execution_count
    }
    const syncCalls = () => app.metrics.render().then((m) => /workflow_sync_sync_runs_total\{sync_type="(user|workflows)"/.test(m.body))

    // 1. The webhook, called on n8n directly.
    const hook = await triggerWebhook(n8n.baseUrl, path, { via: 'n8n' })
    tt.equal(hook.status, 200, 'n8n accepted the webhook call')
    await waitFor('count 1 in GET /workflows/{id}', async () => (await countOf()) === 1, 30_000)
    await waitFor('event with count 1', async () => stream.events.some((e) => e.event === 'workflow.update' && e.data?.id === wf.id && e.data?.execution_count === 1), 30_000)
    tt.pass('count and event after a direct webhook call')

    // 2. POST /workflows/{id}/run.
    const run = await fetch(`${base}/workflows/${wf.id}/run`, { method: 'POST', headers: auth, body: JSON.stringify({ via: 'run' }) })
    const runBody = await run.json() as any
    tt.equal(run.status, 202, JSON.stringify(runBody))
    tt.equal(runBody.trigger, 'n8n-nodes-base.webhook')
    await waitFor('count 2 in GET /workflows/{id}', async () => (await countOf()) === 2, 30_000)
    await waitFor('event with count 2', async () => stream.events.some((e) => e.event === 'workflow.update' && e.data?.id === wf.id && e.data?.execution_count === 2), 30_000)
    tt.pass('count and event after POST /workflows/{id}/run')
    const w = await (await fetch(`${base}/workflows/${wf.id}`, { headers: { authorization: auth.authorization } })).json() as any
    tt.equal(w.successful_executions, 2)
    tt.equal(w.last_execution_status, 'success')
    tt.notOk(await syncCalls(), 'no /sync was ever called')

    // A non-webhook workflow: 422.
    const sched = await fetch(`${base}/workflows`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'manual', nodes: [{ id: randomUUID(), name: 'Manual', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} }], connections: {}, settings: {} })
    })
    const s = await sched.json() as any
    const r422 = await fetch(`${base}/workflows/${s.id}/run`, { method: 'POST', headers: { authorization: auth.authorization } })
    tt.equal(r422.status, 422)
    tt.match(((await r422.json()) as any).detail, /n8n-nodes-base\.webhook/)
  })
})
