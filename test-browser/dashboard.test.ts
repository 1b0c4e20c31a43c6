// The dashboard in a real browser (Debian's Chromium through playwright-core) against this
// service on real Postgres and a REAL n8n (the e2e harness; one major: N8N_VERSION, default
// 1.123.5): the guide's three user-journey scenarios, sign-in, charts, and the demo user.
//
//   npm run test:browser      (about 2-3 min, two n8n boots included)
//
// The steps share state (the workflows created); tap stops at the first failed assertion of a
// step, and teardown closes the browser, the service, the database and n8n also after a failure.
import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Locator, Page } from 'playwright-core'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createTestDatabase } from '../test/helpers/db.ts'
import type { TestDatabase } from '../test/helpers/db.ts'
import { mintUserToken, nowSeconds, randomUserId, TEST_JWT_SECRET } from '../test/helpers/tokens.ts'
import { n8nApi, startN8n, triggerWebhook, waitFor, FINAL } from '../test-e2e/n8n-harness.ts'
import type { N8nApi, N8nInstance } from '../test-e2e/n8n-harness.ts'
import { launch } from './browser.ts'
import type { Browser } from './browser.ts'

const VERSION = process.env.N8N_VERSION ?? '1.123.5'
const UI_TIMEOUT = 20_000
t.setTimeout(420_000)

type TabPage = Page & { errors: string[] }

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

const row = (page: Page, name: string): Locator => page.locator('#workflows-table tbody tr', { has: page.getByRole('link', { name, exact: true }) })
const cell = (page: Page, name: string, col: string): Locator => row(page, name).locator(`td[data-col="${col}"]`)

async function signInWithToken (page: Page, base: string, token: string): Promise<void> {
  await page.goto(base + '/')
  await page.getByLabel('Access token').fill(token)
  await page.getByRole('button', { name: 'Sign in with token' }).click()
  await page.locator('main[data-loaded="true"]').waitFor({ timeout: UI_TIMEOUT })
}

async function waitLive (page: Page): Promise<void> {
  await page.locator('#live[data-state="live"]').waitFor({ timeout: UI_TIMEOUT })
}

async function n8nExecutionsFinal (api: N8nApi, workflowId: string, count: number): Promise<void> {
  await waitFor(`${count} final execution(s) of ${workflowId}`, async () => {
    const r = await api.get('/executions', { workflowId, limit: 250 })
    return r.status === 200 && r.body.data.length === count && r.body.data.every((e: { status: string }) => FINAL.has(e.status))
  }, 30_000)
}

/** Elements a person operates, each with the name a screen reader would announce (simplified). */
async function unnamedControls (page: Page): Promise<string[]> {
  return await page.locator('button:visible, a:visible, input:visible, select:visible, textarea:visible').evaluateAll((els: any[]) => els.flatMap((e: any) => {
    const document = e.ownerDocument
    const byLabel = e.labels && e.labels.length ? [...e.labels].map((l: any) => l.textContent ?? '').join(' ') : ''
    const ref = e.getAttribute('aria-labelledby')
    const byRef = ref ? ref.split(' ').map((id: string) => document.getElementById(id)?.textContent ?? '').join(' ') : ''
    const name = (e.getAttribute('aria-label') ?? '') + byLabel + byRef + (['BUTTON', 'A'].includes(e.tagName) ? e.textContent ?? '' : '') + (e.getAttribute('title') ?? '')
    return name.trim() ? [] : [e.outerHTML.slice(0, 120)]
  }))
}

t.test(`dashboard ↔ service ↔ n8n ${VERSION}`, async (t) => {
  let n8n: N8nInstance | undefined
  let tdb: TestDatabase | undefined
  let app: FastifyInstance | undefined
  let browser: Browser | undefined
  t.teardown(async () => {
    await browser?.close()
    await app?.close().catch(() => {})
    await tdb?.drop().catch(() => {})
    await n8n?.stop().catch(() => {})
  })

  const n8nPort = Number(process.env.N8N_BROWSER_PORT ?? await freePort())
  const started = Date.now()
  ;[n8n, tdb, browser] = await Promise.all([startN8n({ version: VERSION, port: n8nPort }), createTestDatabase('ws_browser'), launch()])
  t.comment(`n8n ${VERSION} on ${n8nPort}, Postgres and Chromium ready in ${Math.round((Date.now() - started) / 1000)} s`)
  const api = n8nApi(n8n.apiUrl, n8n.apiKey)
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: tdb.url,
    SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
    N8N_API_URL: n8n.apiUrl,
    N8N_API_KEY: n8n.apiKey,
    N8N_TIMEOUT_MS: '5000',
    N8N_RETRIES: '0',
    RATE_LIMIT_MAX: '60000'
  })
  app = await buildApp({ config, logger: false })
  // The live tail of n8n's executions (issue 12), where this service has it.
  const liveTail = 'LIVE_SYNC_INTERVAL_MS' in config && Number((config as { LIVE_SYNC_INTERVAL_MS?: number }).LIVE_SYNC_INTERVAL_MS) > 0
  t.comment(liveTail ? 'live tail on: counts are expected to move without a sync' : 'no live tail: counts move with the sync button')
  const base = await listen(app)
  const userId = randomUserId()
  const token = await mintUserToken({ sub: userId, email: 'browser@example.com' })
  const tab1 = await browser.newPage()
  let tab2: TabPage | undefined
  const names = { first: `Browser webhook ${Date.now().toString(36)}`, second: `Second tab ${Date.now().toString(36)}` }
  const paths: Record<string, string> = {}
  const n8nIds: Record<string, string> = {}

  await t.test('sign-in: a bad token shows a clear message, a pasted token signs in', async (t) => {
    await tab1.goto(base + '/')
    await tab1.getByLabel('Access token').waitFor()
    t.equal(await tab1.locator('#live').isVisible(), false, 'nothing but the sign-in before a token')
    await tab1.getByLabel('Access token').fill('not-a-token')
    await tab1.getByRole('button', { name: 'Sign in with token' }).click()
    await tab1.locator('#token-error', { hasText: 'refused' }).waitFor({ timeout: UI_TIMEOUT })
    t.match(await tab1.textContent('#token-error'), /This token was refused \(.+\)\. Paste a current access token/)
    const expired = await mintUserToken({ sub: userId, exp: nowSeconds() - 60 })
    await tab1.getByLabel('Access token').fill(expired)
    await tab1.getByRole('button', { name: 'Sign in with token' }).click()
    await tab1.locator('#token-error', { hasText: /expired/i }).waitFor({ timeout: UI_TIMEOUT })
    t.pass('an expired token says it expired')
    t.ok(tab1.errors.every((e) => /status of 401/.test(e)), 'the refusals are the only console messages')
    tab1.errors.length = 0
    await signInWithToken(tab1, base, token)
    t.equal(await tab1.textContent('#who-name'), 'browser@example.com')
    await waitLive(tab1)
    t.equal(await tab1.textContent('#live-text'), 'Live', 'the dot has text')
    t.equal(await tab1.locator('#workflows-empty').isVisible(), true)
  })

  await t.test('scenario 1: create in the dashboard → in the table and in n8n as [USR-]; run in n8n → sync moves the counts', async (t) => {
    await tab1.getByRole('button', { name: 'New workflow' }).click()
    await tab1.getByLabel('Name').fill(names.first)
    const def = JSON.parse(await tab1.getByLabel(/n8n definition/).inputValue())
    paths.first = def.nodes[0].parameters.path
    t.equal(def.nodes[0].type, 'n8n-nodes-base.webhook', 'the ready webhook template')
    await tab1.getByRole('button', { name: 'Create' }).click()
    await row(tab1, names.first).waitFor({ timeout: UI_TIMEOUT })
    await cell(tab1, names.first, 'status').getByText('deployed').waitFor({ timeout: UI_TIMEOUT })
    await cell(tab1, names.first, 'active').getByText('Yes', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    const listed = await api.get('/workflows', { limit: 250 })
    const inN8n = listed.body.data.filter((w: { name: string }) => w.name === `[USR-${userId.slice(0, 8)}] ${names.first}`)
    t.equal(inN8n.length, 1, 'n8n holds it once, with the [USR-] name')
    t.equal(inN8n[0].active, true)
    n8nIds.first = inN8n[0].id
    t.equal(await cell(tab1, names.first, 'executions').textContent(), '0')

    for (const i of [1, 2]) {
      const r = await triggerWebhook(n8n!.baseUrl, paths.first!, { i })
      t.equal(r.status, 200, `webhook call ${i}`)
    }
    await n8nExecutionsFinal(api, n8nIds.first!, 2)
    if (liveTail) {
      // The service's live tail ingests them; /events brings the row: no click, no reload.
      await cell(tab1, names.first, 'executions').getByText('2', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
      t.pass('the counts moved live (live tail → /events)')
    }
    await tab1.getByRole('button', { name: 'Sync all workflows with n8n' }).click()
    await cell(tab1, names.first, 'executions').getByText('2', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await cell(tab1, names.first, 'successes').textContent(), '2')
    t.equal(await cell(tab1, names.first, 'failures').textContent(), '0')
    t.equal(await cell(tab1, names.first, 'rate').textContent(), '100 %')
    t.match(await cell(tab1, names.first, 'last-run').textContent(), /success/)
    await tab1.locator('#notice', { hasText: 'Sync done' }).waitFor({ timeout: UI_TIMEOUT })
  })

  await t.test('scenario 2: two tabs — a create in tab 1 appears in tab 2 without a reload; a run updates both', async (t) => {
    tab2 = await browser!.newPage()
    await signInWithToken(tab2, base, token)
    await waitLive(tab2)
    await row(tab2, names.first).waitFor({ timeout: UI_TIMEOUT })
    let reloads = 0
    tab2.on('framenavigated', () => { reloads++ })

    await tab1.getByRole('button', { name: 'New workflow' }).click()
    await tab1.getByLabel('Name').fill(names.second)
    paths.second = JSON.parse(await tab1.getByLabel(/n8n definition/).inputValue()).nodes[0].parameters.path
    await tab1.getByRole('button', { name: 'Create' }).click()
    await cell(tab2, names.second, 'status').getByText('deployed').waitFor({ timeout: UI_TIMEOUT })
    await cell(tab2, names.second, 'active').getByText('Yes', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.pass('tab 2 shows the new workflow, deployed and active')
    const listed = await api.get('/workflows', { limit: 250 })
    n8nIds.second = listed.body.data.find((w: { name: string }) => w.name.endsWith(` ${names.second}`)).id

    const runButton = row(tab1, names.second).getByRole('button', { name: `Run ${names.second}` })
    if (await runButton.count()) {
      await runButton.click()
      t.comment('run through the dashboard (POST /workflows/{id}/run)')
    } else {
      t.equal((await triggerWebhook(n8n!.baseUrl, paths.second!, { tab: 1 })).status, 200, 'run in n8n (no run endpoint on this server)')
    }
    await n8nExecutionsFinal(api, n8nIds.second!, 1)
    // With the live tail both tabs update by themselves; without it a sync in tab 1 moves both.
    if (!liveTail) await tab1.getByRole('button', { name: `Sync ${names.second}` }).click()
    for (const [label, page] of [['tab 1', tab1], ['tab 2', tab2]] as const) {
      await cell(page, names.second, 'executions').getByText('1', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
      t.equal(await cell(page, names.second, 'successes').textContent(), '1', `${label}: counts moved`)
    }
    t.equal(reloads, 0, 'tab 2 was never reloaded')
  })

  await t.test('one workflow: ledger history and charts render with data', async (t) => {
    await row(tab1, names.first).getByRole('link', { name: names.first }).click()
    await tab1.locator('main[data-loaded="true"] #executions-table').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await tab1.locator('#executions-table tbody tr').count(), 2, 'two executions from the ledger')
    t.match(await tab1.locator('#executions-table tbody').textContent(), /success/)
    for (const id of ['chart-executions', 'chart-rate', 'chart-duration']) {
      const fig = tab1.locator(`#${id}`)
      t.ok(Number(await fig.getAttribute('data-points')) >= 1, `${id} has buckets`)
      const painted = await fig.locator('canvas').evaluate((c: any) => {
        const canvas = c
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
        let n = 0
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++
        return n
      })
      t.ok(painted > 100, `${id}: the canvas is drawn (${painted} pixels)`)
    }
    t.match(await tab1.locator('#chart-executions [role="img"]').getAttribute('aria-label'), /2 successful, 0 failed/)
    await tab1.getByRole('button', { name: 'Per day (30 d)' }).click()
    await tab1.locator('#chart-executions [role="img"][aria-label*="per day"]').waitFor({ timeout: UI_TIMEOUT })
    t.match(await tab1.locator('#chart-executions [role="img"]').getAttribute('aria-label'), /2 successful, 0 failed, 0 other executions over \d+ day/)
    t.same(await unnamedControls(tab1), [], 'every control of the detail page has an accessible name')
    await tab1.getByRole('link', { name: '← All workflows' }).click()
    await row(tab1, names.first).waitFor()
  })

  await t.test('scenario 3: n8n stopped → sync says n8n is unavailable and nothing is lost; n8n back → sync works', async (t) => {
    const folder = n8n!.userFolder
    const apiKey = n8n!.apiKey
    await n8n!.stop({ keepData: true })
    await tab1.getByRole('button', { name: 'Sync all workflows with n8n' }).click()
    await tab1.locator('#banner:visible').waitFor({ timeout: 30_000 })
    t.equal(await tab1.textContent('#banner-title'), 'n8n is unavailable')
    t.match(await tab1.textContent('#banner-detail'), /nothing was lost/)
    t.equal(await cell(tab1, names.first, 'executions').textContent(), '2', 'counts kept')
    t.equal(await cell(tab1, names.second, 'executions').textContent(), '1', 'counts kept')
    const stored = await app!.inject({ method: 'GET', url: '/workflows', headers: { authorization: `Bearer ${token}` } })
    t.same(stored.json().data.map((w: { name: string, execution_count: number }) => [w.name, w.execution_count]).sort(), [[names.first, 2], [names.second, 1]].sort(), 'the database kept both workflows and their counts')

    n8n = await startN8n({ version: VERSION, port: n8nPort, resume: { userFolder: folder, apiKey } })
    t.equal((await triggerWebhook(n8n.baseUrl, paths.first!, { back: true })).status, 200, 'the webhook works again')
    await n8nExecutionsFinal(api, n8nIds.first!, 3)
    await tab1.getByRole('button', { name: 'Sync all workflows with n8n' }).click()
    await cell(tab1, names.first, 'executions').getByText('3', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    await tab1.locator('#notice', { hasText: 'Sync done' }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await tab1.locator('#banner').isVisible(), false, 'the error is gone')
    await cell(tab2!, names.first, 'executions').getByText('3', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.pass('tab 2 followed')
  })

  await t.test('run button: POST /workflows/{id}/run calls the webhook in n8n → the count moves', async (t) => {
    const runButton = row(tab1, names.first).getByRole('button', { name: `Run ${names.first}` })
    t.equal(await runButton.count(), 1, 'a webhook workflow has a run button (this server has the run endpoint)')
    const before = Number(await cell(tab1, names.first, 'executions').textContent())
    t.equal(before, 3, 'three executions so far (scenarios 1 and 3)')
    const answered = tab1.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/run'))
    await runButton.click()
    t.equal((await answered).status(), 202, 'n8n accepted the webhook call')
    await tab1.locator('#notice', { hasText: `Run of “${names.first}” started.` }).waitFor({ timeout: UI_TIMEOUT })
    await n8nExecutionsFinal(api, n8nIds.first!, before + 1)
    // With the live tail the row moves by itself; without it, a sync brings the run in.
    if (!liveTail) await tab1.getByRole('button', { name: `Sync ${names.first}` }).click()
    for (const [label, page] of [['tab 1', tab1], ['tab 2', tab2!]] as const) {
      await cell(page, names.first, 'executions').getByText(String(before + 1), { exact: true }).waitFor({ timeout: UI_TIMEOUT })
      t.equal(await cell(page, names.first, 'successes').textContent(), String(before + 1), `${label}: the run counted as a success`)
    }
    t.match(await cell(tab1, names.first, 'last-run').textContent(), /success/)
    t.equal(await tab1.locator('#banner').isVisible(), false, 'no error shown')
  })

  await t.test('delete with confirmation; 360 px wide; accessible names; no console errors', async (t) => {
    await row(tab1, names.second).getByRole('button', { name: `Delete ${names.second}` }).click()
    await tab1.getByRole('button', { name: 'Cancel' }).click()
    t.equal(await row(tab1, names.second).count(), 1, 'cancel keeps it')
    await row(tab1, names.second).getByRole('button', { name: `Delete ${names.second}` }).click()
    await tab1.locator('#confirm-dialog').getByRole('button', { name: 'Delete' }).click()
    await row(tab2!, names.second).waitFor({ state: 'detached', timeout: UI_TIMEOUT })
    t.equal(await row(tab1, names.second).count(), 0)
    const gone = await api.get(`/workflows/${n8nIds.second}`)
    t.equal(gone.status, 404, 'deleted in n8n too')

    await tab1.setViewportSize({ width: 360, height: 740 })
    await tab1.waitForTimeout(100) // one layout pass after the resize (no event to await)
    const overflow = await tab1.evaluate('document.documentElement.scrollWidth') as number
    t.ok(overflow <= 360, `no horizontal scrolling at 360 px (scrollWidth ${overflow})`)
    t.equal(await row(tab1, names.first).getByRole('button', { name: `Sync ${names.first}` }).isVisible(), true, 'actions reachable on a phone')
    t.same(await unnamedControls(tab1), [], 'every control of the table page has an accessible name')
    await tab1.getByRole('link', { name: 'Operations' }).click()
    await tab1.locator('main[data-loaded="true"] #logs-table').waitFor({ timeout: UI_TIMEOUT })
    t.ok(Number(await tab1.textContent('#ops-total')) >= 3, 'the user\'s syncs are listed (the three sync presses)')
    t.match(await tab1.locator('#stats-table').textContent(), /user|workflows/)
    t.same(await unnamedControls(tab1), [], 'every control of the operations page has an accessible name')
    t.same(tab1.errors, [], 'tab 1: no console errors (CSP included)')
    t.same(tab2!.errors, [], 'tab 2: no console errors')
  })
})

t.test('development on the generated secret: the demo user is signed in at once', async (t) => {
  const tdb = await createTestDatabase('ws_browser_demo')
  const config = loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATABASE_URL: tdb.url, N8N_API_URL: 'http://127.0.0.1:9/api/v1' })
  const app = await buildApp({ config, logger: false })
  const browser = await launch({ width: 360, height: 740 })
  t.teardown(async () => { await browser.close(); await app.close(); await tdb.drop() })
  const base = await listen(app)
  const page = await browser.newPage()
  await page.goto(base + '/')
  await page.locator('main[data-loaded="true"]').waitFor({ timeout: UI_TIMEOUT })
  t.equal(await page.textContent('#who-name'), 'demo@example.com')
  await waitLive(page)
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByLabel('Access token').waitFor()
  t.pass('signed out; the sign-in form is back')
  t.same(page.errors, [])
})
