// The dashboard in Supabase mode, in a real browser: the service runs with SUPABASE_URL +
// SUPABASE_ANON_KEY (+ service-role key) and no DATABASE_URL, pointed at a stand-in of the
// Supabase project on real HTTP (test/helpers/supabase-stand-in.ts: PostgREST and Auth emulated
// with a real Postgres computing every answer, Realtime on a real WebSocket fed by real database
// changes). The page signs in with supabase-js (email + password), follows changes with Supabase
// Realtime (postgres_changes under RLS), and the connection dot follows the socket. n8n is the
// simulated one of the benchmarks (bench/sim-n8n.ts, a real HTTP server in its own process).
//
//   npx tap --disable-coverage --timeout=600 test-browser/supabase-mode.test.ts
import t from 'tap'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import type { Locator, Page, Request } from 'playwright-core'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { SimClient } from '../bench/sim-n8n.ts'
import type { SimWorkflowDump } from '../bench/sim-n8n.ts'
import { createTestDatabase } from '../test/helpers/db.ts'
import { randomUserId } from '../test/helpers/tokens.ts'
import { startSupabaseStandIn } from '../test/helpers/supabase-stand-in.ts'
import { waitFor } from '../test-e2e/n8n-harness.ts'
import { launch } from './browser.ts'

const UI_TIMEOUT = 20_000
t.setTimeout(300_000)

const row = (page: Page, name: string): Locator => page.locator('#workflows-table tbody tr', { has: page.getByRole('link', { name, exact: true }) })
const cell = (page: Page, name: string, col: string): Locator => row(page, name).locator(`td[data-col="${col}"]`)
const liveState = (page: Page, state: string): Locator => page.locator(`#live[data-state="${state}"]`)

t.test('Supabase mode: Supabase Auth sign-in, Realtime live updates, the connection dot', async (t) => {
  const tdb = await createTestDatabase('ws_browser_sb')
  t.teardown(() => tdb.drop())
  const standIn = await startSupabaseStandIn(tdb.url)
  t.teardown(() => standIn.stop())
  const sim = await SimClient.start()
  t.teardown(() => sim.stop())
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    SUPABASE_URL: standIn.url,
    SUPABASE_ANON_KEY: standIn.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: standIn.serviceKey,
    N8N_API_URL: sim.baseUrl,
    N8N_API_KEY: 'sim-key',
    N8N_TIMEOUT_MS: '5000',
    N8N_RETRIES: '0',
    RATE_LIMIT_MAX: '60000',
    // no live tail: the sync below is the only writer of the counts (Realtime carries whichever writes)
    LIVE_SYNC_INTERVAL_MS: '0'
  })
  const app: FastifyInstance = await buildApp({ config, logger: false })
  t.teardown(() => app.close())
  t.equal(app.store.kind, 'supabase', 'the service is in Supabase mode')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const browser = await launch()
  t.teardown(() => browser.close())
  const sql = new pg.Client({ connectionString: tdb.url })
  await sql.connect()
  t.teardown(() => sql.end())

  const password = 'correct horse battery 7'
  const user = await standIn.auth.createUser({ email: 'supabase-browser@example.com', password })
  const otherId = randomUserId()
  const seed = async (userId: string, name: string): Promise<string> =>
    (await sql.query<{ id: string }>("insert into public.mvp_workflows (user_id, name, status, active) values ($1, $2, 'deployed', true) returning id::text", [userId, name])).rows[0]!.id
  const mine = { name: 'Seeded in the database', id: await seed(user.id, 'Seeded in the database') }
  const theirs = { name: 'Another user\'s workflow', id: await seed(otherId, 'Another user\'s workflow') }
  const page = await browser.newPage()
  // The page's own reads of the list: a change shown with none of them came through Realtime.
  const listReads: string[] = []
  page.on('request', (r: Request) => { if (/\/workflows(\?|$)/.test(new URL(r.url()).pathname + new URL(r.url()).search) && r.method() === 'GET') listReads.push(r.url()) })

  await t.test('email + password through supabase-js: a wrong password says so; the right one shows the user\'s table', async (t) => {
    await page.goto(base + '/')
    const form = page.locator('#password-form')
    await form.waitFor({ timeout: UI_TIMEOUT })
    t.equal(await page.getByRole('textbox', { name: 'Access token' }).isVisible(), true, 'the token form stays as the second way in')
    await page.getByLabel('Email').fill(user.email)
    await page.getByLabel('Password').fill('not the password')
    await form.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.locator('#password-error', { hasText: 'Invalid login credentials' }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await page.textContent('#password-error'), 'Sign-in failed: Invalid login credentials')
    t.equal(standIn.auth.sessions, 0, 'no session was issued')
    t.ok(page.errors.every((e) => /status of 400/.test(e)), 'the refusal is the only console message')
    page.errors.length = 0

    await page.getByLabel('Password').fill(password)
    await form.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.locator('main[data-loaded="true"]').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await page.textContent('#who-name'), user.email)
    t.equal(standIn.auth.sessions, 1, 'one session, from the password grant')
    await row(page, mine.name).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await row(page, theirs.name).count(), 0, 'RLS: another user\'s workflow is not listed')
    await liveState(page, 'live').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await page.textContent('#live-text'), 'Live')
    t.ok(standIn.realtime.joins >= 1, 'the page joined a Realtime channel')
    const token = await page.evaluate('window.__dashboard.token') as string
    const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } })
    t.equal(me.json().user_id, user.id, 'the page holds the Supabase Auth access token of the user')
  })

  await t.test('a direct change to the user\'s row appears without a reload or a list read; another user\'s change never reaches the page', async (t) => {
    const reads = listReads.length
    let navigations = 0
    page.on('framenavigated', () => { navigations++ })
    const sentBefore = standIn.realtime.sent.length
    await sql.query('update public.mvp_workflows set execution_count = 5, successful_executions = 4, failed_executions = 1 where id = $1', [theirs.id])
    await sql.query("update public.mvp_workflows set execution_count = 3, successful_executions = 2, failed_executions = 1, last_execution_status = 'error', last_execution_at = now() where id = $1", [mine.id])
    await cell(page, mine.name, 'executions').getByText('3', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await cell(page, mine.name, 'successes').textContent(), '2')
    t.equal(await cell(page, mine.name, 'failures').textContent(), '1')
    t.equal(await cell(page, mine.name, 'rate').textContent(), '66.7 %')
    t.match(await cell(page, mine.name, 'last-run').textContent(), /error/)
    t.equal(listReads.length, reads, 'no GET /workflows: the row came through Realtime')
    t.equal(navigations, 0, 'no reload')
    const sent = standIn.realtime.sent.slice(sentBefore)
    t.same(sent.map((s) => [s.sub, s.type, s.id]), [[user.id, 'UPDATE', mine.id]], 'Realtime sent the user\'s own change only (RLS)')
  })

  await t.test('a workflow created in the page, then a sync made elsewhere: the counts move live', async (t) => {
    const name = `Created in Supabase mode ${Date.now().toString(36)}`
    await page.getByRole('button', { name: 'New workflow' }).click()
    await page.getByLabel('Name').fill(name)
    await page.getByRole('button', { name: 'Create' }).click()
    await cell(page, name, 'status').getByText('deployed').waitFor({ timeout: UI_TIMEOUT })
    await cell(page, name, 'active').getByText('Yes', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    const rowId = (await sql.query<{ id: string }>('select id::text from public.mvp_workflows where name = $1', [name])).rows[0]?.id
    const inN8n = (await sim.request<SimWorkflowDump[]>({ op: 'workflowsDump' })).filter((w) => w.rowId === rowId)
    t.equal(inN8n.length, 1, 'the simulated n8n holds it once')
    t.match(inN8n[0]?.name, new RegExp(`^\\[USR-${user.id.slice(0, 8)}\\] `), 'with the [USR-] name')
    await sim.request({ op: 'generate', spec: { workflowIds: [inN8n[0]!.id], perWorkflow: 4, errorRate: 0, crashedRate: 0, canceledRate: 0, seed: 7 } })
    const reads = listReads.length
    const token = await page.evaluate('window.__dashboard.token') as string
    const sync = await fetch(`${base}/sync`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ workflow_ids: [rowId] }) })
    t.equal(sync.status, 200, 'a sync outside the page')
    t.match(await sync.json(), { status: 'success', executions_ingested: 4 })
    await cell(page, name, 'executions').getByText('4', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await cell(page, name, 'successes').textContent(), '4')
    t.equal(await cell(page, name, 'rate').textContent(), '100 %')
    t.equal(listReads.length, reads, 'no GET /workflows: the counts came through Realtime')
  })

  await t.test('the Realtime stand-in drops: the dot goes grey; back: green, and a change made meanwhile is caught up', async (t) => {
    const sentBefore = standIn.realtime.sent.length
    const joinsBefore = standIn.realtime.joins
    standIn.realtime.drop()
    await liveState(page, 'reconnecting').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await page.textContent('#live-text'), 'Reconnecting…')
    t.equal(await page.locator('#live-dot').getAttribute('class'), 'dot ', 'grey: neither live nor error')
    t.equal(standIn.realtime.connections, 0, 'no socket is open')
    const refused = standIn.realtime.refusedUpgrades
    await waitFor('a reconnection attempt while Realtime is down', async () => standIn.realtime.refusedUpgrades > refused, 30_000)
    t.equal(await page.locator('#live').getAttribute('data-state'), 'reconnecting', 'still grey after a refused attempt')
    await sql.query('update public.mvp_workflows set execution_count = 9, successful_executions = 8 where id = $1', [mine.id])
    const reads = listReads.length
    standIn.realtime.resume()
    await liveState(page, 'live').waitFor({ timeout: 30_000 })
    t.ok(standIn.realtime.joins > joinsBefore, 'the page rejoined by itself')
    await cell(page, mine.name, 'executions').getByText('9', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await cell(page, mine.name, 'successes').textContent(), '8')
    t.same(standIn.realtime.sent.slice(sentBefore), [], 'Realtime never sent that change (no replay): the page caught up by itself')
    t.ok(listReads.length > reads, 'by reading the list again')
    t.ok(page.errors.length > 0 && page.errors.every((e) => /WebSocket connection to .* failed/.test(e)), 'the console shows the refused attempts, nothing else')
    page.errors.length = 0
  })

  await t.test('Realtime refuses the channel: the dot goes red with the reason; accepted again: green', async (t) => {
    standIn.realtime.refuseJoins('Token has expired')
    standIn.realtime.drop()
    standIn.realtime.resume()
    await liveState(page, 'error').waitFor({ timeout: 30_000 })
    t.equal(await page.textContent('#live-text'), 'Live updates unavailable')
    t.equal(await page.locator('#live-dot').getAttribute('class'), 'dot error', 'red')
    t.match(await page.locator('#live').getAttribute('title'), /Token has expired/, 'the reason is on the dot')
    standIn.realtime.refuseJoins(null)
    await liveState(page, 'live').waitFor({ timeout: 30_000 })
    await sql.query('update public.mvp_workflows set execution_count = 10, successful_executions = 9 where id = $1', [mine.id])
    await cell(page, mine.name, 'executions').getByText('10', { exact: true }).waitFor({ timeout: UI_TIMEOUT })
    t.pass('live again: a change arrives')
    t.ok(page.errors.every((e) => /WebSocket connection to .* failed/.test(e)), 'no console message but refused WebSocket attempts')
    page.errors.length = 0
  })

  await t.test('sign out ends the Supabase session', async (t) => {
    const token = await page.evaluate('window.__dashboard.token') as string
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.locator('#password-form').waitFor({ timeout: UI_TIMEOUT })
    const r = await fetch(`${standIn.url}/auth/v1/user`, { headers: { apikey: standIn.anonKey, authorization: `Bearer ${token}` } })
    t.equal(r.status, 403, 'Supabase Auth no longer knows the session')
    t.match(await r.json(), { error_code: 'session_not_found' })
    t.same(page.errors, [], 'no console errors (CSP included)')
  })
})
