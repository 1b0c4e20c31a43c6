// Takes the README's screenshots of the dashboard (docs/dashboard.png, docs/dashboard-workflow.png,
// docs/dashboard-mobile.png): a real n8n (the e2e harness, 1.123.5), the service on an embedded
// database in a temp folder in development mode (the demo user signs in at once), a few
// workflows run through their webhooks and synced, then Chromium.
//   npm run screenshot        (about a minute; needs scripts/install-n8n.sh 1.123.5 once)
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { startN8n, triggerWebhook, waitFor, n8nApi, FINAL } from '../test-e2e/n8n-harness.ts'
import { launch } from '../test-browser/browser.ts'

const dir = mkdtempSync(join(tmpdir(), 'workflow-sync-screenshot-'))
const n8n = await startN8n({ version: '1.123.5', port: Number(process.env.N8N_SCREENSHOT_PORT ?? 5697) })
const app = await buildApp({
  config: loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', PGLITE_DIR: join(dir, 'pglite'), N8N_API_URL: n8n.apiUrl, N8N_API_KEY: n8n.apiKey, SUPABASE_JWT_SECRET: '', DATABASE_URL: '' }),
  logger: false
})
const browser = await launch({ width: 1280, height: 760 })
try {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const token = (await app.inject({ method: 'GET', url: '/dashboard/config.json' })).json().demo.access_token as string
  const auth = { authorization: `Bearer ${token}` }
  const node = (name: string, type: string, x: number, parameters: object, typeVersion = 1): object => ({ id: randomUUID(), name, type, typeVersion, position: [x, 0], parameters })
  const webhook = (path: string): object => ({ ...node('Webhook', 'n8n-nodes-base.webhook', 0, { httpMethod: 'POST', path, responseMode: 'onReceived' }, 2), webhookId: randomUUID() })
  const make = async (name: string, path: string, next: object | null, active = true): Promise<string> => {
    const body = {
      name,
      active,
      settings: { executionOrder: 'v1' },
      nodes: next ? [webhook(path), next] : [webhook(path)],
      connections: next ? { Webhook: { main: [[{ node: (next as { name: string }).name, type: 'main', index: 0 }]] } } : {}
    }
    const r = await app.inject({ method: 'POST', url: '/workflows', headers: auth, payload: body })
    if (r.statusCode !== 201) throw new Error(`create ${name}: ${r.statusCode} ${r.body}`)
    return r.json().n8n_workflow_id
  }
  const runs: Array<[string, string, number]> = []
  const orders = await make('Order received → CRM', 'orders', node('Wait', 'n8n-nodes-base.wait', 250, { resume: 'timeInterval', amount: 1, unit: 'seconds' }, 1.1))
  runs.push([orders, 'orders', 5])
  const payments = await make('Payment check', 'payments', node('Fail', 'n8n-nodes-base.stopAndError', 250, { errorMessage: 'card declined' }))
  runs.push([payments, 'payments', 2])
  const signups = await make('New signup → Slack', 'signups', null)
  runs.push([signups, 'signups', 3])
  await make('Weekly digest (draft)', 'digest', null, false)
  for (const [, path, n] of runs) for (let i = 0; i < n; i++) await triggerWebhook(n8n.baseUrl, path, { i })
  const api = n8nApi(n8n.apiUrl, n8n.apiKey)
  for (const [id, , n] of runs) {
    await waitFor(`${n} runs of ${id}`, async () => {
      const r = await api.get('/executions', { workflowId: id, limit: 250 })
      return r.body.data.length === n && r.body.data.every((e: { status: string }) => FINAL.has(e.status))
    }, 60_000)
  }
  await app.inject({ method: 'POST', url: '/sync', headers: auth, payload: {} })

  const page = await browser.newPage()
  await page.goto(base + '/')
  await page.locator('#live[data-state="live"]').waitFor()
  await page.locator('#workflows-table tbody tr').nth(3).waitFor()
  await page.screenshot({ path: 'docs/dashboard.png' })
  await page.getByRole('link', { name: 'Order received → CRM' }).click()
  await page.locator('main[data-loaded="true"] #executions-table').waitFor()
  await page.screenshot({ path: 'docs/dashboard-workflow.png', fullPage: true })
  await page.setViewportSize({ width: 360, height: 740 })
  await page.getByRole('link', { name: '← All workflows' }).click()
  await page.locator('#workflows-table tbody tr').nth(3).waitFor()
  await page.screenshot({ path: 'docs/dashboard-mobile.png' })
  if (page.errors.length) console.error(`console errors: ${page.errors.join(' | ')}`)
  console.log('wrote docs/dashboard.png, docs/dashboard-workflow.png, docs/dashboard-mobile.png')
} finally {
  await browser.close()
  await app.close()
  await n8n.stop()
  rmSync(dir, { recursive: true, force: true })
}
