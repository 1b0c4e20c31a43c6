// End to end: THIS SERVICE's HTTP API against a REAL n8n (issues 2 item 14, 3 and 4 "End to end").
// For each version in N8N_VERSIONS (comma/space separated; default 1.123.5 and 2.30.8), one after
// the other: boot n8n on 127.0.0.1:5681, 5682, … (never 5678), create a fresh Postgres database,
// build the service with buildApp from a real config (DATABASE_URL of that database, the harness's
// n8n URL and API key), listen on 127.0.0.1:0 and drive it with fetch over real HTTP. After each
// step, n8n's own view (its public API, through the harness) is checked.
//
//   PATH=/work/main/node_modules/.bin:$PATH N8N_VERSIONS=1.123.5 \
//     tap --jobs=1 --disable-coverage test-e2e/service.test.ts
//
// About 25 s (1.123.5) and 35 s (2.30.8) on a dev VM, n8n boot included. The steps share state
// (ids, counts); a failed step skips the ones that need it, except cleanup (step 7), which runs
// anyway. Teardown closes the service, drops the database and stops n8n, also after a failure.
//
// The service's log lines (warn and above) are captured, not printed: the suite asserts that none
// is an error but the one it provokes, and that none carries the API key.
// E2E_SERVICE_LOG_LEVEL=info (or debug) also prints them, at that level, to stderr.
import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp, loggerOptions } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createTestDatabase } from '../test/helpers/db.ts'
import type { TestDatabase } from '../test/helpers/db.ts'
import { mintUserToken, TEST_JWT_SECRET } from '../test/helpers/tokens.ts'
import { DEFAULT_N8N_VERSIONS, FINAL, n8nApi, startN8n, triggerWebhook, waitFor } from './n8n-harness.ts'
import type { N8nApi, N8nInstance } from './n8n-harness.ts'

const versions = (process.env.N8N_VERSIONS ?? '').split(/[\s,]+/).filter(Boolean)
const VERSIONS = versions.length ? versions : DEFAULT_N8N_VERSIONS
const FIRST_PORT = Number(process.env.N8N_SERVICE_FIRST_PORT ?? 5681)
const CRON_SECRET = 'e2e-cron-secret-0123456789abcdef-0123456789'
const WAIT_SECONDS = 5
const BURST = 24
const BURST_WAVES = 8

// Boot (≤ 2 min worst case) + scenario (~1 min) per version.
t.setTimeout(VERSIONS.length * 240_000)

type Json = any

interface Answer {
  status: number
  headers: Headers
  body: Json
  text: string
}

// ---------------------------------------------------------------------------------------------
// n8n definitions

function webhookNode (path: string, webhookId: string): Json {
  return {
    id: randomUUID(),
    name: 'Webhook',
    type: 'n8n-nodes-base.webhook',
    typeVersion: 2,
    position: [0, 0],
    webhookId,
    parameters: { httpMethod: 'POST', path, responseMode: 'onReceived' }
  }
}

/** Body of POST /workflows (this service): Webhook → (optional) next node. */
function webhookWorkflow (name: string, path: string, next?: Json, extra: Json = {}): Json {
  const nodes = [webhookNode(path, randomUUID())]
  if (next) nodes.push({ id: randomUUID(), position: [250, 0], ...next })
  return {
    name,
    nodes,
    connections: next ? { Webhook: { main: [[{ node: next.name, type: 'main', index: 0 }]] } } : {},
    settings: { executionOrder: 'v1' },
    ...extra
  }
}

const stopAndError = {
  name: 'Fail',
  type: 'n8n-nodes-base.stopAndError',
  typeVersion: 1,
  parameters: { errorMessage: 'workflow-sync e2e: deliberate failure' }
}

const waitNode = {
  name: 'Wait',
  type: 'n8n-nodes-base.wait',
  typeVersion: 1.1,
  parameters: { resume: 'timeInterval', amount: WAIT_SECONDS, unit: 'seconds' }
}

// ---------------------------------------------------------------------------------------------
// n8n's own view

async function n8nWorkflows (api: N8nApi): Promise<Json[]> {
  const all: Json[] = []
  let cursor: string | undefined
  do {
    const r = await api.get('/workflows', { limit: 250, cursor })
    if (r.status !== 200) throw new Error(`n8n GET /workflows → ${r.status} ${JSON.stringify(r.body)}`)
    all.push(...r.body.data)
    cursor = r.body.nextCursor ?? undefined
  } while (cursor)
  return all
}

async function n8nExecutions (api: N8nApi, workflowId: string, status?: string): Promise<Json[]> {
  const all: Json[] = []
  let cursor: string | undefined
  do {
    const r = await api.get('/executions', { workflowId, status, limit: 250, cursor })
    if (r.status !== 200) throw new Error(`n8n GET /executions → ${r.status} ${JSON.stringify(r.body)}`)
    all.push(...r.body.data)
    cursor = r.body.nextCursor ?? undefined
  } while (cursor)
  return all
}

/** n8n's truth for one workflow, once every run listed is final. */
async function n8nTruth (api: N8nApi, workflowId: string): Promise<{ total: number, success: number, failed: number, ids: string[], statuses: Record<string, string> }> {
  const all = await n8nExecutions(api, workflowId)
  const success = await n8nExecutions(api, workflowId, 'success')
  const failed = await n8nExecutions(api, workflowId, 'error') // n8n's `error` filter also matches `crashed`
  const statuses: Record<string, string> = {}
  for (const e of all) statuses[e.id] = e.status
  return { total: all.length, success: success.length, failed: failed.length, ids: all.map((e) => e.id).sort(), statuses }
}

async function waitForFinalRuns (api: N8nApi, workflowId: string, count: number, timeoutMs = 30_000): Promise<Json[]> {
  return await waitFor(`${count} final execution(s) of n8n workflow ${workflowId}`, async () => {
    const list = await n8nExecutions(api, workflowId)
    return list.length === count && list.every((e) => FINAL.has(e.status)) && list
  }, timeoutMs)
}

// ---------------------------------------------------------------------------------------------

VERSIONS.forEach((version, i) => {
  const port = FIRST_PORT + i
  t.test(`service ↔ n8n ${version} (n8n on 127.0.0.1:${port})`, async (t) => {
    const started = Date.now()
    // Resources, each released in teardown even when a later step (or boot) fails.
    let n8n: N8nInstance | undefined
    let tdb: TestDatabase | undefined
    let app: FastifyInstance | undefined
    t.teardown(async () => {
      const errors: unknown[] = []
      for (const [what, fn] of [
        ['service', async () => { await app?.close() }],
        ['database', async () => { await tdb?.drop() }],
        ['n8n', async () => { await n8n?.stop() }]
      ] as const) {
        try {
          await fn()
        } catch (err) {
          errors.push(`${what}: ${String(err)}`)
        }
      }
      if (errors.length) t.comment(`teardown problems: ${errors.join('; ')}`)
      t.comment(`n8n ${version}: ${Math.round((Date.now() - started) / 1000)} s in all`)
    })

    n8n = await startN8n({ version, port })
    t.comment(`n8n ${version} ready in ${Math.round((Date.now() - started) / 1000)} s (log ${n8n.logFile})`)
    tdb = await createTestDatabase('ws_e2e')
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent', // the logger below overrides the level: warn and above, captured
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: tdb.url,
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      N8N_API_URL: n8n.apiUrl,
      N8N_API_KEY: n8n.apiKey,
      CRON_SECRET,
      CLEANUP_GRACE_MINUTES: '0',
      // this scenario checks what each /sync does: the live tail (test-e2e/live-tail.test.ts) is off
      LIVE_SYNC_INTERVAL_MS: '0',
      // the scenario makes ~25 syncs and ~20 writes in a minute: keep the presets out of its way
      RATE_LIMIT_MAX: '60000'
    })
    // Log lines of the service: captured (and printed when E2E_SERVICE_LOG_LEVEL is set).
    const logLines: Json[] = []
    const sink = {
      write (line: string): void {
        try {
          logLines.push(JSON.parse(line))
        } catch {
          logLines.push({ level: 60, msg: line })
        }
        if (process.env.E2E_SERVICE_LOG_LEVEL) process.stderr.write(line)
      }
    }
    // Test seam of the deploy saga: a crash between n8n's create and the database write.
    let crashAfterCreateOf: string | null = null
    app = await buildApp({
      config,
      logger: { ...(loggerOptions(config) as object), level: process.env.E2E_SERVICE_LOG_LEVEL ?? 'warn', stream: sink },
      testing: {
        workflowHooks: {
          afterN8nCreate: (row) => {
            if (row.name !== crashAfterCreateOf) return
            crashAfterCreateOf = null
            throw new Error('e2e: injected crash after the n8n create')
          }
        }
      }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const serviceUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const api = n8nApi(n8n.apiUrl, n8n.apiKey)
    const apiKey = n8n.apiKey

    const userId = randomUUID()
    const token = await mintUserToken({ sub: userId })
    const tag = `[USR-${userId.replace(/-/g, '').slice(0, 8)}]`
    const runTag = version.replace(/\W/g, '-')

    // Every answer of the service passes through here; none may carry n8n's API key.
    const leaks: string[] = []
    const call = async (method: string, path: string, opts: { body?: unknown, headers?: Record<string, string>, auth?: string | null } = {}): Promise<Answer> => {
      const headers: Record<string, string> = { accept: 'application/json', ...opts.headers }
      const auth = opts.auth === undefined ? `Bearer ${token}` : opts.auth
      if (auth !== null) headers.authorization = auth
      if (opts.body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(serviceUrl + path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(60_000)
      })
      const text = await res.text()
      if (text.includes(apiKey) || JSON.stringify([...res.headers]).includes(apiKey)) leaks.push(`${method} ${path}`)
      let body: Json
      try {
        body = text === '' ? undefined : JSON.parse(text)
      } catch {
        body = text
      }
      return { status: res.status, headers: res.headers, body, text }
    }
    const cron = `Bearer ${CRON_SECRET}`
    const getRow = async (id: string): Promise<Json> => {
      const r = await call('GET', `/workflows/${id}`)
      if (r.status !== 200) throw new Error(`GET /workflows/${id} → ${r.status} ${r.text}`)
      return r.body
    }
    const sync = async (tt: Test, label: string): Promise<Json> => {
      const r = await call('POST', '/sync', { body: {} })
      tt.equal(r.status, 200, `${label}: POST /sync → 200`, { body: r.body })
      return r.body
    }
    /** The row's counts equal n8n's own, and the ledger lists exactly n8n's executions. */
    const assertCountsMatchN8n = async (tt: Test, rowId: string, label: string): Promise<Json> => {
      const row = await getRow(rowId)
      const truth = await n8nTruth(api, row.n8n_workflow_id)
      tt.equal(row.execution_count, truth.total, `${label}: execution_count = n8n's ${truth.total}`)
      tt.equal(row.successful_executions, truth.success, `${label}: successful_executions = n8n's ${truth.success}`)
      tt.equal(row.failed_executions, truth.failed, `${label}: failed_executions = n8n's ${truth.failed}`)
      const ledger = await call('GET', `/workflows/${rowId}/executions?limit=100`)
      tt.equal(ledger.status, 200, `${label}: GET /workflows/{id}/executions`)
      const ledgerStatuses: Record<string, string> = {}
      for (const e of ledger.body.data) ledgerStatuses[e.n8n_execution_id] = e.status
      tt.same(ledgerStatuses, truth.statuses, `${label}: the ledger holds n8n's executions with n8n's statuses`)
      tt.equal(ledger.body.data.length, Object.keys(truth.statuses).length, `${label}: one ledger row per n8n execution`)
      return { row, truth, ledger: ledger.body.data }
    }

    // Shared by the steps below.
    const s: Json = {}
    let broken: string | null = null
    const step = async (name: string, fn: (tt: Test) => Promise<void>, opts: { always?: boolean } = {}): Promise<void> => {
      if (broken && !opts.always) {
        await t.test(name, { skip: `needs the steps before it; "${broken}" failed` }, async () => {})
        return
      }
      const r = await t.test(name, fn)
      if (!r?.ok && !broken) broken = name
    }

    await step('1. create: deployed, one [USR-] workflow with the marker in n8n; the same Idempotency-Key replays', async (tt) => {
      const health = await call('GET', '/ready', { auth: null })
      tt.equal(health.status, 200, 'GET /ready', { body: health.body })
      tt.match(health.body, { status: 'ready', database: { ok: true, kind: 'pg' }, n8n: { reachable: true } })

      s.okPath = `e2e-ok-${runTag}-${randomUUID()}`
      s.okName = `orders webhook ${runTag}`
      const body = webhookWorkflow(s.okName, s.okPath)
      s.okWebhookId = body.nodes[0].webhookId
      const key = `e2e-${randomUUID()}`
      const created = await call('POST', '/workflows', { body, headers: { 'idempotency-key': key } })
      tt.equal(created.status, 201, 'POST /workflows → 201', { body: created.body })
      const w = created.body
      tt.equal(w.status, 'deployed')
      tt.equal(w.last_error, null)
      tt.equal(w.user_id, userId)
      tt.equal(w.name, s.okName)
      tt.equal(w.active, false, 'not active until asked')
      tt.type(w.n8n_workflow_id, 'string')
      tt.equal(created.headers.get('location'), `/workflows/${w.id}`)
      s.ok = w

      const all = await n8nWorkflows(api)
      const named = all.filter((x) => x.name === `${tag} ${s.okName}`)
      tt.equal(named.length, 1, `n8n has exactly one "${tag} ${s.okName}"`)
      tt.equal(all.length, 1, 'and nothing else')
      const inN8n = await api.get(`/workflows/${w.n8n_workflow_id}`)
      tt.equal(inN8n.status, 200)
      tt.equal(inN8n.body.id, w.n8n_workflow_id)
      tt.equal(inN8n.body.name, `${tag} ${s.okName}`, 'named [USR-<8 hex>] <name>')
      tt.match(inN8n.body.name, /^\[USR-[0-9a-f]{8}\] /)
      tt.equal(inN8n.body.active, false)
      tt.same(inN8n.body.staticData, { workflow_sync: { row_id: w.id, user_id: userId } }, 'the staticData marker names the row')
      tt.equal(inN8n.body.nodes[0].webhookId, s.okWebhookId, 'the fixed webhookId reached n8n')
      tt.equal(inN8n.body.nodes[0].parameters.path, s.okPath)

      const again = await call('POST', '/workflows', { body, headers: { 'idempotency-key': key } })
      tt.equal(again.status, 201, 'the same key again → 201')
      tt.equal(again.headers.get('idempotent-replayed'), 'true')
      tt.same(again.body, created.body, 'the same answer')
      const after = (await n8nWorkflows(api)).filter((x) => x.name === `${tag} ${s.okName}`)
      tt.equal(after.length, 1, 'still one workflow in n8n')
      const list = await call('GET', '/workflows')
      tt.same(list.body.data.map((x: Json) => x.id), [w.id], 'and one row')
    })

    await step('1b. a crash between n8n\'s create and the database write: the retry adopts, no duplicate', async (tt) => {
      const name = `crashed deploy ${runTag}`
      const key = `e2e-${randomUUID()}`
      const body = webhookWorkflow(name, `e2e-crash-${runTag}-${randomUUID()}`)
      crashAfterCreateOf = name
      const crashed = await call('POST', '/workflows', { body, headers: { 'idempotency-key': key } })
      tt.equal(crashed.status, 500, 'the injected crash answers 500', { body: crashed.body })
      tt.equal(crashed.body.code, 'internal')
      const pending = (await call('GET', '/workflows?status=pending')).body.data
      tt.equal(pending.length, 1, 'the row was kept, pending')
      const row = pending[0]
      tt.match(row, { name, status: 'pending', n8n_workflow_id: null })
      const marked = (await n8nWorkflows(api)).filter((x) => x.staticData?.workflow_sync?.row_id === row.id)
      tt.equal(marked.length, 1, 'n8n holds the workflow the crashed attempt created')

      const retried = await call('POST', '/workflows', { body, headers: { 'idempotency-key': key } })
      tt.equal(retried.status, 201, 'the retry with the same key → 201', { body: retried.body })
      tt.equal(retried.headers.get('idempotent-replayed'), null, 'a resumed deploy, not a replay')
      tt.match(retried.body, { id: row.id, status: 'deployed', last_error: null })
      tt.equal(retried.body.n8n_workflow_id, marked[0]?.id, 'it adopted the workflow n8n already had (found by its marker)')
      const named = (await n8nWorkflows(api)).filter((x) => x.name === `${tag} ${name}`)
      tt.same(named.map((x) => x.id), [marked[0]?.id], 'n8n holds exactly one')

      const del = await call('DELETE', `/workflows/${row.id}`)
      tt.equal(del.status, 204)
      tt.equal((await api.get(`/workflows/${marked[0]?.id}`)).status, 404, 'deleted from n8n too')
    })

    await step('2. activate, trigger by webhook: runs that succeed, one that fails, one still running', async (tt) => {
      const act = await call('POST', `/workflows/${s.ok.id}/activate`)
      tt.equal(act.status, 200, 'activate → 200', { body: act.body })
      tt.equal(act.body.active, true)
      tt.equal(act.body.status, 'deployed')
      tt.equal((await api.get(`/workflows/${s.ok.n8n_workflow_id}`)).body.active, true, 'n8n: active')
      for (let k = 0; k < 3; k++) {
        const r = await triggerWebhook(n8n!.baseUrl, s.okPath, { k })
        tt.equal(r.status, 200, `webhook run ${k + 1} accepted`)
      }
      const okRuns = await waitForFinalRuns(api, s.ok.n8n_workflow_id, 3)
      tt.ok(okRuns.every((e) => e.status === 'success' && e.mode === 'webhook'), 'n8n: 3 successful webhook runs')

      // created with active: true → deployed and activated by the create itself
      s.failPath = `e2e-fail-${runTag}-${randomUUID()}`
      const fail = await call('POST', '/workflows', { body: webhookWorkflow(`failing ${runTag}`, s.failPath, stopAndError, { active: true }) })
      tt.equal(fail.status, 201, 'create (active: true) → 201', { body: fail.body })
      tt.equal(fail.body.status, 'deployed')
      tt.equal(fail.body.active, true)
      s.fail = fail.body
      tt.equal((await api.get(`/workflows/${s.fail.n8n_workflow_id}`)).body.active, true, 'n8n: active')
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.failPath, {})).status, 200, 'failing run accepted')
      const [failed] = await waitForFinalRuns(api, s.fail.n8n_workflow_id, 1)
      tt.equal(failed.status, 'error', 'n8n: the run failed')

      s.slowPath = `e2e-slow-${runTag}-${randomUUID()}`
      const slow = await call('POST', '/workflows', { body: webhookWorkflow(`waiting ${runTag}`, s.slowPath, waitNode, { active: true }) })
      tt.equal(slow.status, 201, 'create the Wait workflow → 201', { body: slow.body })
      tt.equal(slow.body.active, true)
      s.slow = slow.body
    })

    await step('3. sync while a run is running, then after it finished: counts equal n8n\'s, each run once', async (tt) => {
      // A run that is still running during the first sync.
      const t0 = Date.now()
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.slowPath, {})).status, 200, 'Wait run accepted')
      const [running] = await waitFor('the Wait run to be running', async () => {
        const r = await api.get('/executions', { workflowId: s.slow.n8n_workflow_id, status: 'running' })
        return r.status === 200 && r.body.data.length === 1 && r.body.data
      }, 4000, 100)
      tt.same(await n8nExecutions(api, s.slow.n8n_workflow_id), [], 'n8n hides the running run from its list')

      const first = await sync(tt, 'sync 1')
      const stillRunning = await api.get(`/executions/${running.id}`)
      tt.equal(stillRunning.body.status, 'running', `the Wait run was still running after sync 1 (${Date.now() - t0} ms after its start)`)
      tt.equal(first.status, 'success', 'sync 1: success', { body: first })
      tt.equal(first.workflows_synced, 3)
      tt.equal(first.workflows_failed, 0)
      tt.same(first.errors, [])
      // 3 + 1 finished runs, and the running one as an open ledger row (from n8n's running list)
      tt.equal(first.executions_ingested, 5, 'sync 1 ingested the 4 finished runs and the running one')
      await assertCountsMatchN8n(tt, s.ok.id, 'after sync 1, ok')
      await assertCountsMatchN8n(tt, s.fail.id, 'after sync 1, failing')
      const slowRow1 = await getRow(s.slow.id)
      tt.equal(slowRow1.execution_count, 0, 'the running run is not counted yet')
      const slowLedger1 = (await call('GET', `/workflows/${s.slow.id}/executions`)).body.data
      tt.same(slowLedger1.map((e: Json) => [e.n8n_execution_id, e.status, e.finished]), [[running.id, 'running', false]],
        'the ledger holds the run as open (status running), from n8n\'s running list')
      const log1 = (await call('GET', '/sync/logs?limit=1')).body.data[0]
      tt.equal(log1.details.running_list, 'supported', 'this n8n lists running executions (status=running)')

      // Once it finished: the next sync counts it, once.
      const [done] = await waitForFinalRuns(api, s.slow.n8n_workflow_id, 1, 20_000)
      tt.equal(done.id, running.id)
      tt.equal(done.status, 'success')
      const second = await sync(tt, 'sync 2')
      tt.equal(second.status, 'success', 'sync 2: success', { body: second })
      tt.equal(second.executions_ingested, 1, 'sync 2 updated the Wait run (running → success), nothing else')
      const slowCheck = await assertCountsMatchN8n(tt, s.slow.id, 'after sync 2, Wait')
      tt.equal(slowCheck.row.execution_count, 1, 'the Wait run counted exactly once')
      tt.equal(slowCheck.row.successful_executions, 1)
      tt.equal(slowCheck.ledger.length, 1, 'one ledger row for it')
      tt.equal(slowCheck.row.last_execution_status, 'success')
      const ok2 = await assertCountsMatchN8n(tt, s.ok.id, 'after sync 2, ok')
      tt.same([ok2.row.execution_count, ok2.row.successful_executions, ok2.row.failed_executions], [3, 3, 0])
      tt.equal(ok2.row.last_execution_status, 'success')
      tt.type(ok2.row.last_sync_at, 'string')
      const fail2 = await assertCountsMatchN8n(tt, s.fail.id, 'after sync 2, failing')
      tt.same([fail2.row.execution_count, fail2.row.successful_executions, fail2.row.failed_executions], [1, 0, 1])
      tt.equal(fail2.row.last_execution_status, 'error')

      // Nothing new: a third sync changes nothing.
      const before = (await call('GET', '/workflows?limit=100')).body
      const third = await sync(tt, 'sync 3')
      tt.equal(third.status, 'success')
      tt.equal(third.executions_ingested, 0, 'sync 3 ingested nothing')
      const after = (await call('GET', '/workflows?limit=100')).body
      tt.same(after, before, 'sync 3 changed no workflow (counts, timestamps, versions)')
      for (const id of [s.ok.id, s.fail.id, s.slow.id]) await assertCountsMatchN8n(tt, id, `after sync 3, ${id}`)

      // The history: one sync_logs row per sync, newest first.
      const logs = await call('GET', '/sync/logs?limit=100')
      tt.equal(logs.status, 200)
      const byId = new Map(logs.body.data.map((l: Json) => [l.id, l]))
      for (const [label, r] of [['sync 1', first], ['sync 2', second], ['sync 3', third]] as const) {
        const log: Json = byId.get(r.sync_log_id)
        tt.ok(log, `${label} has its sync_logs row`)
        tt.match(log, { user_id: userId, sync_type: 'user', status: 'success', workflows_synced: 3, workflows_failed: 0, executions_ingested: r.executions_ingested })
      }
      tt.same(logs.body.data.slice(0, 3).map((l: Json) => l.id), [third.sync_log_id, second.sync_log_id, first.sync_log_id], 'newest first')
      const stats = await call('GET', '/sync/stats?hours=1')
      tt.equal(stats.status, 200)
      tt.match(stats.body, { total: 3, success_rate: 1 })
    })

    await step('3b. a burst of runs with syncs racing it (and two at once): each run counted once', async (tt) => {
      // Under a burst n8n lists runs briefly as `new` (startedAt null) or `running` before it hides
      // them while they run (see the facts test): syncs in the middle of that must still end exact.
      // A fresh workflow (its first pass sets its stop point), waves of webhook calls (answered on
      // receipt, before the runs end), each followed at once by a sync; then syncs until n8n shows
      // every run final. (Before the fix in src/sync/snapshot.ts, 1.123.5 lost runs here.)
      const path = `e2e-burst-${runTag}-${randomUUID()}`
      const created = await call('POST', '/workflows', { body: webhookWorkflow(`burst ${runTag}`, path, undefined, { active: true }) })
      tt.equal(created.status, 201, 'create the burst workflow', { body: created.body })
      const w = created.body
      const during: Json[] = []
      const accepted: number[] = []
      for (let wave = 0; wave < BURST_WAVES; wave++) {
        const rs = await Promise.all(Array.from({ length: BURST / BURST_WAVES }, (_, k) => triggerWebhook(n8n!.baseUrl, path, { wave, k })))
        accepted.push(...rs.map((r) => r.status))
        during.push((await call('POST', '/sync', { body: {} })).body)
      }
      for (let j = 0; j < 20; j++) {
        const all = await n8nExecutions(api, w.n8n_workflow_id)
        if (all.length === BURST && all.every((e) => FINAL.has(e.status))) break
        during.push((await call('POST', '/sync', { body: {} })).body)
      }
      tt.same(accepted, Array(BURST).fill(200), `${BURST} webhook runs accepted`)
      tt.ok(during.length >= BURST_WAVES, `${during.length} syncs ran during the burst (ingested ${during.map((r) => r.executions_ingested).join(', ')})`)
      tt.same(during.filter((r) => r.status !== 'success'), [], 'every sync during the burst succeeded')
      await waitForFinalRuns(api, w.n8n_workflow_id, BURST)

      // two syncs of one user at once: the second waits for the first and answers its result
      const [a, b] = await Promise.all([call('POST', '/sync', { body: {} }), call('POST', '/sync', { body: {} })])
      tt.equal(a.status, 200)
      tt.equal(b.status, 200)
      tt.equal(b.body.sync_log_id, a.body.sync_log_id, 'one sync, one result for both callers')
      tt.equal(a.body.status, 'success')
      const row = await assertCountsMatchN8n(tt, w.id, 'after the burst')
      tt.same([row.row.execution_count, row.row.successful_executions, row.row.failed_executions], [BURST, BURST, 0], 'every run of the burst counted, once')
      const again = await sync(tt, 'after the burst, again')
      tt.equal(again.executions_ingested, 0, 'nothing left to ingest')
      await assertCountsMatchN8n(tt, w.id, 'after the burst, once more')
      for (const id of [s.ok.id, s.fail.id, s.slow.id]) await assertCountsMatchN8n(tt, id, `the others, after the burst (${id})`)

      const del = await call('DELETE', `/workflows/${w.id}`)
      tt.equal(del.status, 204, 'delete the burst workflow')
      tt.equal((await api.get(`/workflows/${w.n8n_workflow_id}`)).status, 404)
    })

    await step('4. rename, deactivate; activating a workflow without a trigger → 422 with n8n\'s message', async (tt) => {
      const current = await getRow(s.ok.id)
      const newName = `orders webhook (renamed) ${runTag}`
      const patch = await call('PATCH', `/workflows/${s.ok.id}`, { body: { name: newName }, headers: { 'if-match': `"${current.version}"` } })
      tt.equal(patch.status, 200, 'PATCH → 200', { body: patch.body })
      tt.equal(patch.body.name, newName)
      tt.equal(patch.body.version, current.version + 1)
      tt.equal(patch.body.status, 'deployed')
      tt.equal(patch.body.active, true)
      const stale = await call('PATCH', `/workflows/${s.ok.id}`, { body: { name: 'nope' }, headers: { 'if-match': `"${current.version}"` } })
      tt.equal(stale.status, 412, 'the old version → 412')
      const inN8n = (await api.get(`/workflows/${s.ok.n8n_workflow_id}`)).body
      tt.equal(inN8n.name, `${tag} ${newName}`, 'n8n: renamed')
      tt.equal(inN8n.active, true, 'n8n: still active')
      tt.same(inN8n.staticData, { workflow_sync: { row_id: s.ok.id, user_id: userId } }, 'n8n: marker kept')
      const forRow = (await n8nWorkflows(api)).filter((x) => x.staticData?.workflow_sync?.row_id === s.ok.id)
      tt.same(forRow.map((x) => x.id), [s.ok.n8n_workflow_id], 'n8n: still one workflow for the row (an update, not a second create)')
      // The webhook still runs after the update (same path, same webhookId).
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.okPath, { after: 'rename' })).status, 200, 'webhook still served after the rename')
      await waitForFinalRuns(api, s.ok.n8n_workflow_id, 4)

      const deact = await call('POST', `/workflows/${s.ok.id}/deactivate`)
      tt.equal(deact.status, 200, 'deactivate → 200', { body: deact.body })
      tt.equal(deact.body.active, false)
      tt.equal((await api.get(`/workflows/${s.ok.n8n_workflow_id}`)).body.active, false, 'n8n: inactive')
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.okPath, {})).status, 404, 'n8n: webhook gone')

      const manual = await call('POST', '/workflows', {
        body: {
          name: `manual only ${runTag}`,
          nodes: [{ id: randomUUID(), name: 'When clicking ‘Execute workflow’', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} }]
        }
      })
      tt.equal(manual.status, 201, 'create a manual-trigger workflow', { body: manual.body })
      tt.equal(manual.body.status, 'deployed')
      s.manual = manual.body
      const act = await call('POST', `/workflows/${s.manual.id}/activate`)
      tt.equal(act.status, 422, 'activate without a trigger → 422', { body: act.body })
      tt.match(act.headers.get('content-type'), /^application\/problem\+json/)
      tt.equal(act.body.code, 'n8n_rejected')
      // n8n's own words, asked for directly
      const raw = await api.post(`/workflows/${s.manual.n8n_workflow_id}/activate`)
      tt.equal(raw.status, 400, 'n8n itself answers 400')
      tt.type(raw.body?.message, 'string')
      tt.ok(String(act.body.detail).includes(raw.body.message), 'detail carries n8n\'s message', { detail: act.body.detail, n8n: raw.body.message })
      tt.match(act.body.detail, /trigger/i)
      tt.equal((await api.get(`/workflows/${s.manual.n8n_workflow_id}`)).body.active, false, 'n8n: still inactive')
      const row = await getRow(s.manual.id)
      tt.equal(row.active, false, 'row: still inactive')
      tt.equal(row.status, 'deployed')
    })

    await step('5. drift: n8n deactivated behind our back is set active again; deleted → missing_in_n8n → redeploy', async (tt) => {
      // active drift: the database wins
      const d = await api.post(`/workflows/${s.fail.n8n_workflow_id}/deactivate`)
      tt.equal(d.status, 200, 'deactivated directly in n8n')
      tt.equal((await getRow(s.fail.id)).active, true, 'the row still says active')
      const r1 = await sync(tt, 'drift sync')
      tt.equal(r1.status, 'success', 'drift sync: success', { body: r1 })
      tt.equal((await api.get(`/workflows/${s.fail.n8n_workflow_id}`)).body.active, true, 'n8n: active again')
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.failPath, {})).status, 200, 'its webhook answers again')
      const log1 = (await call('GET', '/sync/logs?limit=1')).body.data[0]
      tt.equal(log1.id, r1.sync_log_id)
      tt.match(log1.details.drift, [{ workflow_id: s.fail.id, kind: 'active', database_active: true, n8n_active: false, repaired: true }], 'the drift is in sync_logs')
      await waitForFinalRuns(api, s.fail.n8n_workflow_id, 2)

      // gone from n8n: missing_in_n8n, counts kept
      const before = await getRow(s.slow.id)
      s.slowOldN8nId = before.n8n_workflow_id
      tt.equal((await api.delete(`/workflows/${s.slowOldN8nId}`)).status, 200, 'deleted directly in n8n')
      const r2 = await sync(tt, 'missing sync')
      tt.equal(r2.status, 'partial', 'the missing workflow is that sync\'s one failure', { body: r2 })
      tt.match(r2.errors, [{ workflow_id: s.slow.id, code: 'not_found' }])
      tt.equal(r2.errors.length, 1)
      const missing = await getRow(s.slow.id)
      tt.equal(missing.status, 'missing_in_n8n')
      tt.match(missing.last_error, /missing in n8n/i)
      tt.same([missing.execution_count, missing.successful_executions, missing.failed_executions], [1, 1, 0], 'counts never go down')
      const log2 = (await call('GET', '/sync/logs?limit=1')).body.data[0]
      tt.match(log2, { id: r2.sync_log_id, status: 'partial' })
      tt.match(log2.details.drift, [{ workflow_id: s.slow.id, kind: 'missing_in_n8n', n8n_workflow_id: s.slowOldN8nId }])
      // the other workflows went on: the second failing run is counted, the renamed one too
      await assertCountsMatchN8n(tt, s.fail.id, 'after the drift syncs, failing')
      const okNow = await assertCountsMatchN8n(tt, s.ok.id, 'after the drift syncs, ok (renamed)')
      tt.equal(okNow.row.execution_count, 4, 'the run after the rename is counted')

      const redeploy = await call('POST', `/workflows/${s.slow.id}/redeploy`)
      tt.equal(redeploy.status, 200, 'redeploy → 200', { body: redeploy.body })
      tt.equal(redeploy.body.status, 'deployed')
      tt.equal(redeploy.body.last_error, null)
      tt.equal(redeploy.body.active, true)
      tt.type(redeploy.body.n8n_workflow_id, 'string')
      tt.not(redeploy.body.n8n_workflow_id, s.slowOldN8nId, 'a new n8n id')
      s.slow = redeploy.body
      const again = await api.get(`/workflows/${s.slow.n8n_workflow_id}`)
      tt.equal(again.status, 200, 'n8n has it')
      tt.equal(again.body.name, `${tag} waiting ${runTag}`)
      tt.equal(again.body.active, true, 'and it is active, as the row says')
      tt.same(again.body.staticData, { workflow_sync: { row_id: s.slow.id, user_id: userId } })
      tt.equal((await api.get(`/workflows/${s.slowOldN8nId}`)).status, 404, 'the old one stays gone')
      tt.same([s.slow.execution_count, s.slow.successful_executions], [1, 1], 'counts survive the redeploy')
      const r3 = await sync(tt, 'after redeploy')
      tt.equal(r3.status, 'success', 'and the next sync is clean', { body: r3 })
      tt.equal(r3.workflows_synced, 4)
    })

    await step('6. delete → 204; n8n answers 404 for it', async (tt) => {
      const del = await call('DELETE', `/workflows/${s.ok.id}`)
      tt.equal(del.status, 204, 'DELETE → 204')
      tt.equal(del.text, '')
      tt.equal((await api.get(`/workflows/${s.ok.n8n_workflow_id}`)).status, 404, 'n8n: 404')
      tt.equal((await call('GET', `/workflows/${s.ok.id}`)).status, 404, 'service: 404')
      tt.equal((await call('DELETE', `/workflows/${s.ok.id}`)).status, 404, 'deleting again: 404')
      tt.same((await n8nExecutions(api, s.ok.n8n_workflow_id)), [], 'n8n: its executions went with it')
      tt.equal((await triggerWebhook(n8n!.baseUrl, s.okPath, {})).status, 404, 'n8n: its webhook is gone')
    })

    await step('7. cleanup: an orphaned [USR-] workflow is removed; unprefixed and owned ones survive; dry run first', async (tt) => {
      const orphan = await api.post('/workflows', { name: '[USR-deadbeef] orphan', nodes: [], connections: {}, settings: {} })
      tt.equal(orphan.status, 200, 'orphan created directly in n8n', { body: orphan.body })
      const manualN8n = await api.post('/workflows', { name: `made by hand ${runTag}`, nodes: [], connections: {}, settings: {} })
      tt.equal(manualN8n.status, 200, 'unprefixed workflow created directly in n8n')
      const owned = (await call('GET', '/workflows?limit=100')).body.data.filter((w: Json) => w.n8n_workflow_id).map((w: Json) => w.n8n_workflow_id)
      tt.ok(owned.length >= 1, `owned n8n workflows: ${owned.join(', ')}`)
      const ids = async (): Promise<string[]> => (await n8nWorkflows(api)).map((w) => w.id).sort()
      const beforeIds = await ids()
      // grace 0: anything n8n last changed before "now" qualifies; step past n8n's timestamp.
      await sleep(1100)

      const userTry = await call('POST', '/cleanup', { body: { dry_run: true } })
      tt.equal(userTry.status, 403, 'a user token cannot run cleanup')

      const dry = await call('POST', '/cleanup', { body: { dry_run: true }, auth: cron })
      tt.equal(dry.status, 200, 'dry run → 200', { body: dry.body })
      tt.equal(dry.body.dry_run, true)
      tt.equal(dry.body.sync_log_id, null)
      tt.same(dry.body.orphans_deleted.map((o: Json) => o.n8n_workflow_id), [orphan.body.id], 'would delete exactly the orphan')
      tt.same(await ids(), beforeIds, 'dry run: n8n unchanged')

      const real = await call('POST', '/cleanup', { body: {}, auth: cron })
      tt.equal(real.status, 200, 'cleanup → 200', { body: real.body })
      tt.equal(real.body.status, 'success')
      tt.equal(real.body.dry_run, false)
      tt.same(real.body.orphans_deleted.map((o: Json) => o.n8n_workflow_id), [orphan.body.id], 'deleted exactly the orphan')
      tt.same(real.body.orphans_failed, [])
      tt.equal(real.body.n8n_workflows_scanned, beforeIds.length)
      tt.equal((await api.get(`/workflows/${orphan.body.id}`)).status, 404, 'n8n: the orphan is gone')
      tt.equal((await api.get(`/workflows/${manualN8n.body.id}`)).status, 200, 'n8n: the unprefixed one survives')
      for (const id of owned) tt.equal((await api.get(`/workflows/${id}`)).status, 200, `n8n: owned ${id} survives`)
      tt.same(await ids(), beforeIds.filter((id) => id !== orphan.body.id), 'n8n lost nothing else')
      const logs = await call('GET', '/sync/logs?limit=5', { auth: cron })
      tt.match(logs.body.data.find((l: Json) => l.id === real.body.sync_log_id), { sync_type: 'cleanup', status: 'success', workflows_synced: 1 }, 'a cleanup sync_logs row')
      const r = await sync(tt, 'after cleanup')
      tt.equal(r.status, 'success', 'the owned workflows still sync', { body: r })

      // the cron sync and the old Edge Function's entry point, against the same n8n
      const all = await call('POST', '/sync/all', { auth: cron })
      tt.equal(all.status, 200, 'POST /sync/all (cron) → 200', { body: all.body })
      tt.match(all.body, { status: 'success', workflows_synced: owned.length, workflows_failed: 0 })
      tt.equal((await call('POST', '/sync/all')).status, 403, 'a user token on /sync/all → 403')
      const compat = await call('POST', '/workflow-sync', { body: { action: 'sync_all_workflows' } })
      tt.equal(compat.status, 200, 'POST /workflow-sync sync_all_workflows → 200', { body: compat.body })
      tt.match(compat.body, { status: 'success', workflows_synced: owned.length, executions_ingested: 0 })
    }, { always: true })

    t.same(leaks, [], 'no answer of the service carried n8n\'s API key')
    const errors = logLines.filter((l) => l.level >= 50).map((l) => `${l.msg}: ${l.err?.message ?? ''}`)
    t.same(errors, ['unhandled error: e2e: injected crash after the n8n create'],
      'the service logged no error but the injected crash', { lines: logLines.filter((l) => l.level >= 50) })
    t.notOk(logLines.some((l) => JSON.stringify(l).includes(apiKey)), 'no log line carried n8n\'s API key')
  })
})
