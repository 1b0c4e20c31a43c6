// GET /metrics: the exposition parses as the Prometheus text format, and the counters move with
// the traffic that went through the app (real Postgres, n8n faked with nock).
import t from 'tap'
import nock from 'nock'
import { randomUUID } from 'node:crypto'
import { buildTestApp, cronAuth, testUser } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'
import { assertProblem } from '../helpers/http.ts'
import { API, expectCreate, n8n, recordUnmatched } from '../helpers/n8n-nock.ts'
import { FakeN8n } from '../helpers/sync-fake-n8n.ts'
import { FastHistogram, UNMATCHED_ROUTE } from '../../src/plugins/metrics.ts'
import { Registry } from 'prom-client'
import type { Histogram } from 'prom-client'

nock.disableNetConnect()

// ---------------------------------------------------------------------------
// A small parser of the text exposition format 0.0.4: every line is a comment (# HELP / # TYPE),
// blank, or `name{label="value",...} value`. Throws on anything else.

interface Sample { name: string, labels: Record<string, string>, value: number }
interface Family { name: string, help: string | null, type: string | null, samples: Sample[] }
interface Exposition { families: Map<string, Family>, samples: Sample[] }

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const SAMPLE_RE = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)( -?\\d+)?$`)
const LABEL_RE = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/
const VALUE_RE = /^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/

function unescape (v: string): string {
  return v.replace(/\\(\\|"|n)/g, (_m, c: string) => (c === 'n' ? '\n' : c))
}

function familyOf (name: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ['', '_bucket', '_sum', '_count']) {
    if (suffix !== '' && !name.endsWith(suffix)) continue
    const f = families.get(name.slice(0, name.length - suffix.length))
    if (f && (suffix === '' || f.type === 'histogram' || f.type === 'summary')) return f
  }
  return undefined
}

function parseExposition (text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline')
  const families = new Map<string, Family>()
  const samples: Sample[] = []
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`
    if (line === '') return
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line)
      if (!m) throw new Error(`bad comment, ${where}`)
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      const f = families.get(name) ?? { name, help: null, type: null, samples: [] }
      families.set(name, f)
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`second HELP for ${name}, ${where}`)
        f.help = rest
      } else {
        if (f.type !== null) throw new Error(`second TYPE for ${name}, ${where}`)
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad TYPE, ${where}`)
        if (f.samples.length > 0) throw new Error(`TYPE after samples, ${where}`)
        f.type = rest
      }
      return
    }
    const m = SAMPLE_RE.exec(line)
    if (!m) throw new Error(`bad sample, ${where}`)
    const name = m[1]!
    const labels: Record<string, string> = {}
    let rest = m[3] ?? ''
    while (rest.length > 0) {
      const l = LABEL_RE.exec(rest)
      if (!l) throw new Error(`bad labels, ${where}`)
      if (l[1]! in labels) throw new Error(`duplicate label ${l[1]}, ${where}`)
      labels[l[1]!] = unescape(l[2]!)
      rest = rest.slice(l[0].length)
    }
    if (!VALUE_RE.test(m[4]!)) throw new Error(`bad value, ${where}`)
    const value = m[4] === 'NaN' ? Number.NaN : m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4])
    const f = familyOf(name, families)
    if (!f || f.type === null || f.help === null) throw new Error(`sample without HELP and TYPE before it, ${where}`)
    const s = { name, labels, value }
    f.samples.push(s)
    samples.push(s)
  })
  // Histograms: cumulative buckets ending in +Inf, which equals _count.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const groups = new Map<string, Sample[]>()
    for (const s of f.samples) {
      const { le, ...rest } = s.labels
      const key = `${s.name.endsWith('_bucket') ? '' : s.name}${JSON.stringify(Object.entries(rest).sort())}`
      if (s.name.endsWith('_bucket')) {
        if (le === undefined) throw new Error(`${f.name}: bucket without le`)
        const g = groups.get(key) ?? []
        g.push(s)
        groups.set(key, g)
      }
    }
    for (const [key, buckets] of groups) {
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${f.name} ${key}: buckets are not cumulative`)
      }
      const last = buckets[buckets.length - 1]!
      if (last.labels.le !== '+Inf') throw new Error(`${f.name} ${key}: last bucket is not +Inf`)
      const { le: _le, ...labels } = last.labels
      const count = f.samples.find((s) => s.name === `${f.name}_count` && sameLabels(s.labels, labels))
      if (!count || count.value !== last.value) throw new Error(`${f.name} ${key}: +Inf bucket is not _count`)
    }
  }
  return { families, samples }
}

function sameLabels (a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}

/** The value of the one sample `name` whose labels include `labels` exactly (0 when absent). */
function value (e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
    Object.keys(s.labels).filter((k) => k !== 'le').length === Object.keys(labels).filter((k) => k !== 'le').length)
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
  return found[0]?.value ?? 0
}

// ---------------------------------------------------------------------------

let h: TestApp
const unmatched = recordUnmatched()

t.before(async () => {
  // RATE_LIMIT_MAX 3: /me refuses a caller's fourth request in a minute (each test uses its own user).
  h = await buildTestApp({ env: { RATE_LIMIT_MAX: '3' } })
})
t.teardown(async () => {
  unmatched.stop()
  nock.cleanAll()
  nock.enableNetConnect()
  await h?.close()
})
t.afterEach(() => { nock.cleanAll() })

async function scrape (app = h.app, headers: Record<string, string> = {}): Promise<Exposition> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${res.body}`)
  return parseExposition(res.body)
}

const REQ = 'workflow_sync_http_request_duration_seconds'

t.test('the exposition is well-formed text/plain 0.0.4 with HELP and TYPE for every family', async (t) => {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.ok(res.headers['x-request-id'], 'x-request-id like every answer')
  t.notOk(res.body.startsWith('"'), 'the body is the text, not a JSON string')
  const e = parseExposition(res.body)
  t.ok(e.samples.length > 50, `${e.samples.length} samples`)
  for (const f of e.families.values()) {
    t.ok(f.name.startsWith('workflow_sync_'), `${f.name} carries the prefix`)
    t.ok(f.help && f.type, `${f.name} has HELP and TYPE`)
  }
  for (const name of [
    'workflow_sync_http_request_duration_seconds', 'workflow_sync_n8n_request_duration_seconds', 'workflow_sync_n8n_request_errors_total',
    'workflow_sync_rate_limited_requests_total', 'workflow_sync_sync_duration_seconds', 'workflow_sync_sync_runs_total',
    'workflow_sync_executions_ingested_total', 'workflow_sync_event_streams_open',
    'workflow_sync_db_pool_connections_total', 'workflow_sync_db_pool_connections_idle', 'workflow_sync_db_pool_waiting_clients', 'workflow_sync_db_pool_connections_max',
    'workflow_sync_process_cpu_user_seconds_total', 'workflow_sync_process_resident_memory_bytes', 'workflow_sync_nodejs_eventloop_lag_seconds', 'workflow_sync_nodejs_heap_size_used_bytes'
  ]) {
    t.ok(e.families.has(name), `${name} is exposed`)
  }
  t.equal(e.families.get(REQ)?.type, 'histogram')
  t.equal(e.families.get('workflow_sync_rate_limited_requests_total')?.type, 'counter')
  t.equal(e.families.get('workflow_sync_db_pool_connections_idle')?.type, 'gauge')
})

t.test('request counts per route move by exactly the number of requests', async (t) => {
  const before = await scrape()
  const labels = { method: 'GET', route: '/health', status_code: '200' }
  for (let i = 0; i < 7; i++) t.equal((await h.app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  const after = await scrape()
  t.equal(value(after, `${REQ}_count`, labels) - value(before, `${REQ}_count`, labels), 7, '7 GET /health')
  t.equal(value(after, `${REQ}_bucket`, { ...labels, le: '+Inf' }) - value(before, `${REQ}_bucket`, { ...labels, le: '+Inf' }), 7)
  t.ok(value(after, `${REQ}_sum`, labels) > value(before, `${REQ}_sum`, labels), 'durations add up')
  t.ok(value(after, `${REQ}_sum`, labels) - value(before, `${REQ}_sum`, labels) < 7, 'in seconds')
  // The scrape before this one is counted under /metrics.
  t.ok(value(after, `${REQ}_count`, { method: 'GET', route: '/metrics', status_code: '200' }) >= 1, 'scrapes are counted under /metrics')
})

t.test('a 404 of an unknown path is labelled without its URL; a templated route keeps its template', async (t) => {
  const u = await testUser()
  const secretPath = `/no/such/${randomUUID()}`
  const id = randomUUID()
  const before = await scrape()
  assertProblem(t, await h.app.inject({ method: 'GET', url: `${secretPath}?token=abc` }), 404, 'not_found')
  // A known path with another method is 405 (issue 11), still labelled as unmatched.
  assertProblem(t, await h.app.inject({ method: 'DELETE', url: '/health' }), 405, 'method_not_allowed')
  assertProblem(t, await h.app.inject({ method: 'GET', url: `/workflows/${id}`, headers: u.auth }), 404, 'not_found')
  const res = await h.app.inject({ method: 'GET', url: '/metrics' })
  const after = parseExposition(res.body)
  t.equal(value(after, `${REQ}_count`, { method: 'GET', route: UNMATCHED_ROUTE, status_code: '404' }) -
    value(before, `${REQ}_count`, { method: 'GET', route: UNMATCHED_ROUTE, status_code: '404' }), 1, 'GET unknown path → __unmatched__')
  t.equal(value(after, `${REQ}_count`, { method: 'DELETE', route: UNMATCHED_ROUTE, status_code: '405' }) -
    value(before, `${REQ}_count`, { method: 'DELETE', route: UNMATCHED_ROUTE, status_code: '405' }), 1, 'unknown method → __unmatched__')
  t.equal(value(after, `${REQ}_count`, { method: 'GET', route: '/workflows/:id', status_code: '404' }) -
    value(before, `${REQ}_count`, { method: 'GET', route: '/workflows/:id', status_code: '404' }), 1, 'route template, not the id')
  t.notOk(res.body.includes(secretPath), 'the raw path is nowhere')
  t.notOk(res.body.includes(id), 'the raw id is nowhere')
  t.notOk(res.body.includes('token=abc'), 'the query string is nowhere')
  const routes = new Set(after.samples.filter((s) => s.name === `${REQ}_count`).map((s) => s.labels.route))
  for (const r of routes) t.ok(r === UNMATCHED_ROUTE || r?.startsWith('/'), `route label ${r} is a template`)
})

t.test('n8n calls observed through a request: latency histogram per route and outcome, errors counted', async (t) => {
  const u = await testUser()
  const before = await scrape()
  const c = expectCreate('n8n-metrics-1')
  const created = await h.app.inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'metered', nodes: [] } })
  t.equal(created.statusCode, 201, created.body)
  t.ok(c.scope.isDone(), 'n8n was called')
  // /ready pings n8n (GET /workflows?limit=1): n8n answers 500 → one error attempt.
  const ping = n8n().get(`${API}/workflows`).query({ limit: '1' }).reply(500, { message: 'boom' })
  const ready = await h.app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200, ready.body)
  t.equal(ready.json().n8n.reachable, false)
  t.ok(ping.isDone())
  const after = await scrape()
  const N8N = 'workflow_sync_n8n_request_duration_seconds'
  const ok = { method: 'POST', route: '/workflows', outcome: 'ok' }
  t.equal(value(after, `${N8N}_count`, ok) - value(before, `${N8N}_count`, ok), 1, 'one POST /workflows ok')
  t.ok(value(after, `${N8N}_sum`, ok) > value(before, `${N8N}_sum`, ok), 'latency recorded')
  const err = { method: 'GET', route: '/workflows', outcome: 'error' }
  t.equal(value(after, `${N8N}_count`, err) - value(before, `${N8N}_count`, err), 1, 'one GET /workflows error')
  const errs = { ...err, status: '500' }
  t.equal(value(after, 'workflow_sync_n8n_request_errors_total', errs) - value(before, 'workflow_sync_n8n_request_errors_total', errs), 1, 'error counter by status')
  t.equal(value(after, 'workflow_sync_n8n_request_errors_total', { ...ok, status: '200' }), 0, 'successes are not errors')
  t.same(unmatched.requests, [], 'no unexpected n8n call')
})

t.test('rate-limited requests are counted (and show as 429 on their route)', async (t) => {
  const u = await testUser()
  const before = await scrape()
  const codes: number[] = []
  for (let i = 0; i < 5; i++) codes.push((await h.app.inject({ method: 'GET', url: '/me', headers: u.auth })).statusCode)
  t.same(codes, [200, 200, 200, 429, 429])
  const after = await scrape()
  t.equal(value(after, 'workflow_sync_rate_limited_requests_total') - value(before, 'workflow_sync_rate_limited_requests_total'), 2)
  const l = { method: 'GET', route: '/me', status_code: '429' }
  t.equal(value(after, `${REQ}_count`, l) - value(before, `${REQ}_count`, l), 2)
  t.equal(h.app.rateLimitedCount(), value(after, 'workflow_sync_rate_limited_requests_total'), 'same as the limiter\'s own count')
})

t.test('database pool gauges are read at scrape time', async (t) => {
  const e = await scrape()
  const stats = h.db.poolStats()
  t.equal(value(e, 'workflow_sync_db_pool_connections_max'), stats.max, 'max')
  const total = value(e, 'workflow_sync_db_pool_connections_total')
  const idle = value(e, 'workflow_sync_db_pool_connections_idle')
  t.ok(total >= 1 && total <= stats.max, `total ${total}`)
  t.ok(idle >= 0 && idle <= total, `idle ${idle}`)
  t.equal(value(e, 'workflow_sync_db_pool_waiting_clients'), 0, 'nobody waiting at rest')
})

t.test('a real /sync and /sync/all record the run, its duration and the executions it wrote', async (t) => {
  const fake = new FakeN8n()
  fake.intercept()
  const u = await testUser()
  const n8nId = `wf-metered-${randomUUID().slice(0, 8)}`
  const inserted = await h.db.query<{ id: string }>(
    `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id)
     values ($1, 'metered sync', 'deployed', false, $2) returning id`, [u.id, n8nId])
  const rowId = inserted.rows[0]?.id ?? ''
  // n8n's copy carries the row's marker and the owner's prefix, as a deploy leaves it.
  fake.addWorkflow(n8nId, `[USR-${u.id.replace(/-/g, '').slice(0, 8)}] metered sync`, false, { workflow_sync: { row_id: rowId, user_id: u.id } })
  fake.runMany(n8nId, 6, (i) => (i % 3 === 0 ? 'error' : 'success'))
  const d = (a: Exposition, b: Exposition, name: string, labels: Record<string, string> = {}) => value(b, name, labels) - value(a, name, labels)
  const user = { sync_type: 'user', status: 'success' }

  const before = await scrape()
  const res = await h.app.inject({ method: 'POST', url: '/sync', headers: u.auth, payload: {} })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.match(body, { status: 'success', workflows_synced: 1, workflows_failed: 0, executions_ingested: 6 })
  const mid = await scrape()
  t.equal(d(before, mid, 'workflow_sync_sync_runs_total', user), 1, 'one user sync, success')
  t.equal(d(before, mid, 'workflow_sync_sync_duration_seconds_count', user), 1, 'its duration observed once')
  t.equal(d(before, mid, 'workflow_sync_sync_duration_seconds_bucket', { ...user, le: '+Inf' }), 1)
  t.equal(Math.round(d(before, mid, 'workflow_sync_sync_duration_seconds_sum', user) * 1000), body.duration_ms, 'the duration the answer gives, in seconds')
  t.equal(d(before, mid, 'workflow_sync_executions_ingested_total'), 6, 'its six executions')

  fake.runMany(n8nId, 2, 'success')
  const all = await h.app.inject({ method: 'POST', url: '/sync/all', headers: cronAuth })
  t.equal(all.statusCode, 200, all.body)
  const allBody = all.json()
  t.equal(allBody.executions_ingested, 2, 'the two new executions (other rows of this file have none in this n8n)')
  const after = await scrape()
  t.equal(d(mid, after, 'workflow_sync_sync_runs_total', { sync_type: 'all', status: allBody.status }), 1, `one /sync/all, ${String(allBody.status)}`)
  t.equal(d(mid, after, 'workflow_sync_sync_duration_seconds_count', { sync_type: 'all', status: allBody.status }), 1)
  t.equal(d(mid, after, 'workflow_sync_sync_runs_total', user), 0, 'no user sync counted')
  t.equal(d(mid, after, 'workflow_sync_executions_ingested_total'), 2)
})

t.test('app.metrics handles (the sink the sync engine records into): units, labels, ingested executions, open event streams', async (t) => {
  const m = h.app.metrics
  const before = await scrape()
  m.recordSync({ syncType: 'user', status: 'success', durationMs: 1500, executionsIngested: 4 })
  m.recordSync({ syncType: 'all', status: 'partial', durationMs: 20, executionsIngested: 0 })
  m.syncOutcomes.labels('all', 'failed').inc()
  m.executionsIngested.inc(3)
  m.openEventStreams.inc()
  m.openEventStreams.inc()
  m.openEventStreams.dec()
  const after = await scrape()
  const d = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels)
  t.equal(d('workflow_sync_sync_duration_seconds_count', { sync_type: 'user', status: 'success' }), 1)
  t.equal(d('workflow_sync_sync_duration_seconds_sum', { sync_type: 'user', status: 'success' }), 1.5, 'milliseconds become seconds')
  t.equal(d('workflow_sync_sync_duration_seconds_bucket', { sync_type: 'user', status: 'success', le: '1' }), 0)
  t.equal(d('workflow_sync_sync_duration_seconds_bucket', { sync_type: 'user', status: 'success', le: '2.5' }), 1)
  t.equal(d('workflow_sync_sync_runs_total', { sync_type: 'user', status: 'success' }), 1)
  t.equal(d('workflow_sync_sync_runs_total', { sync_type: 'all', status: 'partial' }), 1)
  t.equal(d('workflow_sync_sync_runs_total', { sync_type: 'all', status: 'failed' }), 1)
  t.equal(d('workflow_sync_executions_ingested_total'), 7)
  t.equal(d('workflow_sync_event_streams_open'), 1)
})

t.test('two app instances in one process keep their own counts', async (t) => {
  const second = await buildTestApp({ db: h.db })
  t.teardown(() => second.close())
  const before = await scrape()
  for (let i = 0; i < 3; i++) await second.app.inject({ method: 'GET', url: '/health' })
  const mine = await scrape()
  const theirs = await scrape(second.app)
  const labels = { method: 'GET', route: '/health', status_code: '200' }
  t.equal(value(mine, `${REQ}_count`, labels), value(before, `${REQ}_count`, labels), 'the first app saw none of them')
  t.equal(value(theirs, `${REQ}_count`, labels), 3, 'the second app saw exactly its 3')
  t.ok(value(theirs, 'workflow_sync_process_cpu_user_seconds_total') > 0, 'process metrics in both')
})

t.test('who may read /metrics', async (t) => {
  const remote = { remoteAddress: '203.0.113.7' }
  const anon = await h.app.inject({ method: 'GET', url: '/metrics', ...remote })
  assertProblem(t, anon, 401, 'invalid_token')
  t.match(String(anon.headers['www-authenticate']), /^Bearer/)
  const cron = await h.app.inject({ method: 'GET', url: '/metrics', headers: cronAuth, ...remote })
  t.equal(cron.statusCode, 200, 'the cron credential from anywhere')
  const u = await testUser()
  assertProblem(t, await h.app.inject({ method: 'GET', url: '/metrics', headers: u.auth, ...remote }), 403, 'forbidden')
  assertProblem(t, await h.app.inject({ method: 'GET', url: '/metrics', headers: u.auth }), 403, 'forbidden')
  assertProblem(t, await h.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong' } }), 401, 'invalid_token')
  t.equal((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'loopback, no credential')
  t.equal((await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '::1' })).statusCode, 200, 'IPv6 loopback')
  assertProblem(t, await h.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.7' } }), 401, 'invalid_token')
  assertProblem(t, await h.app.inject({ method: 'GET', url: '/metrics', headers: { forwarded: 'for=203.0.113.7' } }), 401, 'invalid_token')

  const open = await buildTestApp({ db: h.db, env: { CRON_SECRET: '' } })
  t.teardown(() => open.close())
  t.equal((await open.app.inject({ method: 'GET', url: '/metrics', ...remote })).statusCode, 200, 'no CRON_SECRET outside production: open')

  const prod = await buildTestApp({ db: h.db, env: { CRON_SECRET: '', NODE_ENV: 'production' } })
  t.teardown(() => prod.close())
  assertProblem(t, await prod.app.inject({ method: 'GET', url: '/metrics', ...remote }), 401, 'invalid_token')
  t.equal((await prod.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'production: loopback still open')
})

t.test('/metrics is never rate-limited', async (t) => {
  const codes = new Set<number>()
  for (let i = 0; i < 10; i++) codes.add((await h.app.inject({ method: 'GET', url: '/metrics', headers: cronAuth, remoteAddress: '203.0.113.8' })).statusCode)
  t.same([...codes], [200], 'ten scrapes with RATE_LIMIT_MAX=3')
})

t.test('FastHistogram: le is inclusive, buckets cumulative, +Inf and _count agree', async (t) => {
  const registry = new Registry()
  const hist = new FastHistogram({ name: 'x_seconds', help: 'x', labelNames: ['a'], buckets: [1, 0.1, 0.5] })
  registry.registerMetric(hist as unknown as Histogram)
  const s = hist.series(['v "q" \\ n'])
  t.equal(hist.series(['v "q" \\ n']), s, 'the same series for the same values')
  for (const v of [0.05, 0.1, 0.2, 0.5, 0.9, 1, 3]) hist.observe(s, v)
  const e = parseExposition(`${await registry.metrics()}`)
  const labels = { a: 'v "q" \\ n' }
  t.equal(value(e, 'x_seconds_bucket', { ...labels, le: '0.1' }), 2, '0.05 and 0.1')
  t.equal(value(e, 'x_seconds_bucket', { ...labels, le: '0.5' }), 4)
  t.equal(value(e, 'x_seconds_bucket', { ...labels, le: '1' }), 6)
  t.equal(value(e, 'x_seconds_bucket', { ...labels, le: '+Inf' }), 7)
  t.equal(value(e, 'x_seconds_count', labels), 7)
  t.equal(Math.round(value(e, 'x_seconds_sum', labels) * 1000), 5750)
  t.throws(() => new FastHistogram({ name: 'y', help: 'y', labelNames: [], buckets: [1, 1] }))
  hist.reset()
  t.equal(parseExposition(`${await registry.metrics()}`).samples.length, 0, 'reset empties it')
})
