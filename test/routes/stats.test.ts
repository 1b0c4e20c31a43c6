// GET /workflows/{id}/stats and GET /stats on real Postgres: ledger rows are inserted (and some
// updated, as a sync finishes a running execution), and every figure is checked against what this
// file computes from the same rows itself.
import t from 'tap'
import type { Test } from 'tap'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, assertValidation } from '../helpers/http.ts'

const ta = await buildTestApp()
t.teardown(() => ta.close())
const { app, db } = ta

interface Exec { workflowId: string, userId: string, id: string, status: string, startedAt: number, stoppedAt: number | null }

// Deterministic pseudo-random numbers (mulberry32): the same rows on every run.
function rng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6D2B79F5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const WINDOW_START = Date.UTC(2025, 2, 1)
const DAY = 86_400_000
const HOUR = 3_600_000
const STATUSES = ['success', 'success', 'success', 'error', 'crashed', 'canceled', 'running', 'waiting']

async function seedWorkflow (userId: string, name: string): Promise<string> {
  const r = await db.query<{ id: string }>(
    "insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, $2, 'deployed', $3) returning id", [userId, name, `n8n-${name}`])
  return r.rows[0]!.id
}

function makeExecs (workflowId: string, userId: string, n: number, seed: number): Exec[] {
  const rand = rng(seed)
  return Array.from({ length: n }, (_, i) => {
    const status = STATUSES[Math.floor(rand() * STATUSES.length)]!
    const startedAt = WINDOW_START + Math.floor(rand() * 5 * DAY)
    // durations from 1 ms to ~10 min, spread over orders of magnitude
    const duration = Math.floor(Math.exp(rand() * 13.3))
    const open = status === 'running' || status === 'waiting'
    return { workflowId, userId, id: `${seed}-${i}`, status, startedAt, stoppedAt: open ? null : startedAt + duration }
  })
}

async function insertExecs (execs: Exec[]): Promise<void> {
  await db.query(
    `insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status, finished, started_at, stopped_at)
     select w, u, i, 'n8n', s, s = 'success', to_timestamp(a / 1000.0), to_timestamp(b / 1000.0)
       from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[], $6::float8[]) as x(w, u, i, s, a, b)`,
    [execs.map((e) => e.workflowId), execs.map((e) => e.userId), execs.map((e) => e.id), execs.map((e) => e.status),
      execs.map((e) => e.startedAt), execs.map((e) => e.stoppedAt)])
}

/** As a sync does when a running execution finished: one update statement for many rows. */
async function finishOpen (execs: Exec[], seed: number): Promise<number> {
  const rand = rng(seed)
  const done = execs.filter((e) => e.status === 'running').slice(0, 40)
  for (const e of done) {
    e.status = rand() < 0.5 ? 'success' : 'error'
    e.stoppedAt = e.startedAt + 1 + Math.floor(rand() * 5000)
  }
  await db.query(
    `update public.workflow_executions x set status = v.s, finished = v.s = 'success', stopped_at = to_timestamp(v.b / 1000.0), updated_at = now()
       from unnest($1::text[], $2::text[], $3::float8[]) as v(i, s, b) where x.n8n_execution_id = v.i`,
    [done.map((e) => e.id), done.map((e) => e.status), done.map((e) => e.stoppedAt)])
  return done.length
}

// ---- the truth, from the rows ----------------------------------------------------------------

interface Truth { total: number, counts: Record<string, number>, successRate: number | null, durations: number[], avg: number | null }

function truthOf (execs: Exec[]): Truth {
  const counts: Record<string, number> = { success: 0, error: 0, crashed: 0, canceled: 0, waiting: 0, running: 0, new: 0, unknown: 0 }
  for (const e of execs) counts[e.status]!++
  const finished = counts.success! + counts.error! + counts.crashed! + counts.canceled!
  // durations as Postgres stores them (microseconds), in ms
  const durations = execs.filter((e) => e.stoppedAt !== null).map((e) => e.stoppedAt! - e.startedAt).sort((a, b) => a - b)
  return {
    total: execs.length,
    counts,
    successRate: finished === 0 ? null : counts.success! / finished,
    durations,
    avg: durations.length === 0 ? null : durations.reduce((a, b) => a + b, 0) / durations.length
  }
}

function nearestRank (sorted: number[], p: number): number {
  return sorted[Math.ceil(p * sorted.length) - 1]!
}

function checkFigures (t: Test, got: Record<string, any>, execs: Exec[], label: string): void {
  const want = truthOf(execs)
  t.equal(got.total, want.total, `${label}: total`)
  t.same(got.counts, want.counts, `${label}: counts by status`)
  if (want.successRate === null) t.equal(got.success_rate, null, `${label}: no success rate`)
  else t.ok(Math.abs(got.success_rate - want.successRate) < 1e-9, `${label}: success rate ${got.success_rate} = ${want.successRate}`)
  t.equal(got.duration_count, want.durations.length, `${label}: durations counted`)
  if (want.avg === null) {
    t.equal(got.avg_duration_ms, null, `${label}: no average`)
    t.equal(got.p95_duration_ms, null, `${label}: no p95`)
    return
  }
  t.ok(Math.abs(got.avg_duration_ms - want.avg) < 0.01, `${label}: average ${got.avg_duration_ms} = ${want.avg}`)
  if (!('p95_duration_ms' in got)) {
    t.notOk('p50_duration_ms' in got, `${label}: no percentiles for the window`)
    return
  }
  for (const [key, p] of [['p50_duration_ms', 0.5], ['p95_duration_ms', 0.95]] as const) {
    const exact = nearestRank(want.durations, p)
    // the documented estimate: an upper bound within 10 % (rounded to whole ms)
    t.ok(got[key] >= exact - 0.5 && got[key] <= exact * 1.1 + 0.6, `${label}: ${key} ${got[key]} bounds the exact ${exact} within 10 %`)
  }
}

function inWindow (execs: Exec[], from: number, to: number): Exec[] {
  return execs.filter((e) => e.startedAt >= from && e.startedAt < to)
}

// ---- fixtures ----------------------------------------------------------------------------------

const a = await testUser()
const b = await testUser()
const w1 = await seedWorkflow(a.id, 'a1')
const w2 = await seedWorkflow(a.id, 'a2')
const wb = await seedWorkflow(b.id, 'b1')
const e1 = makeExecs(w1, a.id, 700, 1)
const e2 = makeExecs(w2, a.id, 250, 2)
const eb = makeExecs(wb, b.id, 120, 3)
await insertExecs(e1.slice(0, 400))
await insertExecs(e1.slice(400))
await insertExecs(e2)
await insertExecs(eb)
const finished = await finishOpen(e1, 9)

async function get (u: TestUser, url: string) {
  return app.inject({ method: 'GET', url, headers: u.auth })
}

t.test('fixtures: the ledger holds the rows, some of them finished by an update', async (t) => {
  t.equal(finished, 40, '40 running executions finished by one update statement')
  const n = await db.query<{ n: string }>('select count(*)::text as n from public.workflow_executions')
  t.equal(n.rows[0]!.n, String(700 + 250 + 120))
})

t.test('GET /workflows/{id}/stats?bucket=day: every day of the window, figures from the ledger', async (t) => {
  const since = new Date(WINDOW_START - DAY).toISOString()
  const until = new Date(WINDOW_START + 6 * DAY).toISOString()
  const res = await get(a, `/workflows/${w1}/stats?bucket=day&since=${since}&until=${until}`)
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.match(body, { bucket: 'day', since, until, workflow_id: w1 })
  t.equal(body.buckets.length, 7, 'seven days, oldest first, empty ones included')
  t.same(body.buckets.map((x: { start: string }) => x.start), Array.from({ length: 7 }, (_, i) => new Date(WINDOW_START + (i - 1) * DAY).toISOString()))
  t.equal(body.buckets[0].total, 0, 'the day before the data is empty')
  t.same(body.buckets[0].counts, { success: 0, error: 0, crashed: 0, canceled: 0, waiting: 0, running: 0, new: 0, unknown: 0 })
  t.equal(body.buckets[0].success_rate, null)
  t.equal(body.buckets[6].total, 0, 'the day after too')
  for (let i = 1; i <= 5; i++) {
    const from = WINDOW_START + (i - 1) * DAY
    const rows = inWindow(e1, from, from + DAY)
    t.ok(rows.length > 50, `day ${i} has data (${rows.length})`)
    checkFigures(t, body.buckets[i], rows, `day ${i}`)
  }
  checkFigures(t, body.totals, e1, 'the window')
})

t.test('bucket=hour: hours of a part of the window', async (t) => {
  const from = WINDOW_START + 2 * DAY + 5 * HOUR
  const res = await get(a, `/workflows/${w1}/stats?bucket=hour&since=${new Date(from + 30 * 60_000).toISOString()}&until=${new Date(from + 10 * HOUR).toISOString()}`)
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.since, new Date(from).toISOString(), 'since is rounded down to its hour')
  t.equal(body.buckets.length, 10)
  let nonEmpty = 0
  for (let i = 0; i < 10; i++) {
    const rows = inWindow(e1, from + i * HOUR, from + (i + 1) * HOUR)
    if (rows.length > 0) nonEmpty++
    checkFigures(t, body.buckets[i], rows, `hour ${i}`)
  }
  t.ok(nonEmpty >= 5, `most hours have data (${nonEmpty})`)
  checkFigures(t, body.totals, inWindow(e1, from, from + 10 * HOUR), 'ten hours')
})

t.test('GET /stats: all of the caller\'s workflows together, nobody else\'s', async (t) => {
  const since = new Date(WINDOW_START).toISOString()
  const until = new Date(WINDOW_START + 5 * DAY).toISOString()
  const res = await get(a, `/stats?bucket=day&since=${since}&until=${until}`)
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.workflow_id, null)
  t.equal(body.buckets.length, 5)
  const mine = [...e1, ...e2]
  for (let i = 0; i < 5; i++) checkFigures(t, body.buckets[i], inWindow(mine, WINDOW_START + i * DAY, WINDOW_START + (i + 1) * DAY), `day ${i}`)
  checkFigures(t, body.totals, mine, 'A\'s window')
  const theirs = (await get(b, `/stats?bucket=day&since=${since}&until=${until}`)).json()
  checkFigures(t, theirs.totals, eb, 'B sees only B\'s')
})

t.test('defaults: the last 24 hours (current one included), or 30 days', async (t) => {
  const hours = (await get(a, `/workflows/${w1}/stats`)).json()
  t.equal(hours.bucket, 'hour')
  t.equal(hours.buckets.length, 24)
  t.ok(Date.parse(hours.until) > Date.now() && Date.parse(hours.until) - Date.now() <= HOUR, 'until is the end of the current hour')
  t.equal(hours.totals.total, 0, 'the fixtures are in 2025')
  const days = (await get(a, '/stats?bucket=day')).json()
  t.equal(days.buckets.length, 30)
})

t.test('errors: another user\'s workflow, bad windows, no token', async (t) => {
  assertProblem(t, await get(b, `/workflows/${w1}/stats`), 404, 'not_found')
  assertProblem(t, await get(a, '/workflows/00000000-0000-4000-8000-000000000000/stats'), 404, 'not_found')
  assertValidation(t, await get(a, `/workflows/${w1}/stats?bucket=week`), ['querystring/bucket'])
  assertValidation(t, await get(a, `/workflows/${w1}/stats?since=yesterday`), ['querystring/since'])
  assertValidation(t, await get(a, '/stats?bucket=hour&since=2025-01-01T00:00:00Z&until=2025-03-01T00:00:00Z'), ['querystring/since'])
  assertValidation(t, await get(a, '/stats?bucket=day&since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z'), ['querystring/since'])
  const ok = await get(a, '/stats?bucket=day&since=2024-03-01T00:00:00Z&until=2025-03-01T00:00:00Z')
  t.equal(ok.statusCode, 200, 'a year of days is allowed')
  t.equal(ok.json().buckets.length, 365)
  assertProblem(t, await app.inject({ method: 'GET', url: '/stats' }), 401, 'invalid_token')
})

t.test('the rollup: retention keeps the figures, deleting the workflow removes them, users cannot write it', async (t) => {
  const since = new Date(WINDOW_START).toISOString()
  const until = new Date(WINDOW_START + 5 * DAY).toISOString()
  await db.query('delete from public.workflow_executions where workflow_id = $1', [w2])
  const after = (await get(a, `/workflows/${w2}/stats?bucket=day&since=${since}&until=${until}`)).json()
  checkFigures(t, after.totals, e2, 'w2 after its ledger rows were purged')
  await db.query('delete from public.mvp_workflows where id = $1', [w2])
  const left = await db.query<{ n: string }>('select count(*)::text as n from public.workflow_execution_rollups where workflow_id = $1', [w2])
  t.equal(left.rows[0]!.n, '0', 'the rollup went with the workflow')
  const claims = { sub: a.id, role: 'authenticated' as const, aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 }
  await t.rejects(db.withUser(claims, (tx) => tx.query(
    "insert into public.workflow_execution_rollups (workflow_id, user_id, granularity, bucket_start, n_success, duration_hist) values ($1, $2, 'day', now(), 1000, array_fill(0::bigint, array[200]))", [w1, a.id])),
  /permission denied/, 'a user cannot write the rollup')
  await t.rejects(db.withUser(claims, (tx) => tx.query('update public.workflow_execution_rollups set n_success = 0 where workflow_id = $1', [w1])), /permission denied/)
  const anon = await db.query<{ sel: boolean, exec: boolean }>(
    "select has_table_privilege('anon', 'public.workflow_execution_rollups', 'select') as sel, has_function_privilege('anon', 'public.workflow_execution_stats(text, timestamptz, timestamptz, uuid)', 'execute') as exec")
  t.same(anon.rows[0], { sel: false, exec: false }, 'anon reads nothing')
  const apply = await db.query<{ exec: boolean }>("select has_function_privilege('authenticated', 'public.workflow_execution_rollup_apply()', 'execute') as exec")
  t.equal(apply.rows[0]!.exec, false, 'the trigger function is not callable by users')
})
