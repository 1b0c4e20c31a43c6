// npm run bench:stats — the execution analytics on a year of a busy workflow (BENCH_STATS_ROWS,
// default 500 000 ledger rows), all in one run on this machine:
//   - GET /workflows/{id}/stats and GET /stats through the service (Fastify inject: routing, auth,
//     RLS as the user, the rollup's SQL function, the dense series), p50/p99 over many calls;
//   - side by side, the same figures computed straight from the ledger (group by + percentile_cont
//     over the rows, as the owner), which is what the rollup saves;
//   - what the rollup's trigger costs the ledger's writers: ingest-sized inserts (250 rows per
//     statement) with and without it.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { SignJWT } from 'jose'
import { BENCH_SECRET, startBenchApp } from './servers/bench-app.ts'

const ROWS = Number(process.env.BENCH_STATS_ROWS ?? 500_000)
const ITER = Number(process.env.BENCH_STATS_ITERATIONS ?? 200)
const DAY = 86_400_000

const { app, close } = await startBenchApp('ws_bench_stats')
const db = app.db
try {
  const userId = randomUUID()
  const ins = await db.query<{ id: string }>(
    "insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, 'busy', 'deployed', 'n8n-busy'), ($1, 'quiet', 'deployed', 'n8n-quiet') returning id", [userId])
  const [busy, quiet] = ins.rows.map((r) => r.id) as [string, string]
  const yearStart = Date.UTC(new Date().getUTCFullYear() - 1, new Date().getUTCMonth(), new Date().getUTCDate())
  const span = Date.now() - yearStart

  // A year of executions of the busy workflow: ~57 an hour, 80 % success, durations 10 ms … 60 s.
  const seedStarted = performance.now()
  const BATCH = 5_000
  for (let from = 0; from < ROWS; from += BATCH) {
    await db.query(
      `insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_execution_seq, n8n_workflow_id, status, finished, started_at, stopped_at)
       select $1, $2, g::text, g, 'n8n-busy', s, s = 'success', t, t + (exp(random() * 8.7) * 10) * interval '1 millisecond'
         from (select g, to_timestamp(($3::float8 + (g::float8 / $4) * $5) / 1000) as t,
                      case when random() < 0.8 then 'success' when random() < 0.9 then 'error' else 'crashed' end as s
                 from generate_series($6::bigint, $7::bigint) g) x`,
      [busy, userId, yearStart, ROWS, span, from + 1, Math.min(ROWS, from + BATCH)])
  }
  const seedMs = performance.now() - seedStarted
  await db.query('analyze public.workflow_executions')
  await db.query('analyze public.workflow_execution_rollups')
  const rollupRows = (await db.query<{ n: string }>('select count(*)::text as n from public.workflow_execution_rollups')).rows[0]!.n

  const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(BENCH_SECRET))
  const headers = { authorization: `Bearer ${token}` }

  async function timed (label: string, fn: () => Promise<unknown>, n = ITER): Promise<{ label: string, p50: number, p99: number, n: number }> {
    for (let i = 0; i < Math.min(10, n); i++) await fn()
    const ms: number[] = []
    for (let i = 0; i < n; i++) {
      const s = performance.now()
      await fn()
      ms.push(performance.now() - s)
    }
    ms.sort((a, b) => a - b)
    return { label, p50: ms[Math.floor(n * 0.5)]!, p99: ms[Math.min(n - 1, Math.ceil(n * 0.99) - 1)]!, n }
  }
  const route = (url: string) => async () => {
    const res = await app.inject({ method: 'GET', url, headers })
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`)
  }
  const since365 = new Date(Date.now() - 365 * DAY).toISOString()
  const since30 = new Date(Date.now() - 30 * DAY).toISOString()
  const check = (await app.inject({ method: 'GET', url: `/workflows/${busy}/stats?bucket=day&since=${since365}`, headers })).json()
  const results = [
    await timed('GET /workflows/{id}/stats?bucket=day, 365 days', route(`/workflows/${busy}/stats?bucket=day&since=${since365}`)),
    await timed('GET /workflows/{id}/stats?bucket=hour, 30 days (720 buckets)', route(`/workflows/${busy}/stats?bucket=hour&since=${since30}`)),
    await timed('GET /workflows/{id}/stats (default: 24 hours)', route(`/workflows/${busy}/stats`)),
    await timed('GET /stats?bucket=day, 365 days (all workflows)', route(`/stats?bucket=day&since=${since365}`)),
    await timed('from the ledger directly: per day, 365 days, percentile_cont (owner, no RLS)', () => db.query(
      `select date_trunc('day', started_at, 'UTC') d, count(*), count(*) filter (where status = 'success'),
              avg(extract(epoch from stopped_at - started_at) * 1000),
              percentile_cont(array[0.5, 0.95]) within group (order by extract(epoch from stopped_at - started_at))
         from public.workflow_executions where workflow_id = $1 and started_at >= $2 group by 1 order by 1`, [busy, since365]), 10)
  ]

  // The trigger's cost to writers: 100 statements of 250 rows (an ingest page) with and without it.
  async function ingestLike (prefix: string): Promise<number> {
    const s = performance.now()
    for (let i = 0; i < 100; i++) {
      await db.query(
        `insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status, finished, started_at, stopped_at)
         select $1, $2, $3 || g, 'n8n-quiet', 'success', true, now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '1 second'
           from generate_series(1, 250) g`, [quiet, userId, `${prefix}-${i}-`])
    }
    return (performance.now() - s) / 100
  }
  const withTrigger = await ingestLike('a')
  await db.query('alter table public.workflow_executions disable trigger workflow_executions_rollup_insert')
  const without = await ingestLike('b')
  await db.query('alter table public.workflow_executions enable trigger workflow_executions_rollup_insert')
  const withAgain = await ingestLike('c')

  console.log(`\n${ROWS} ledger rows of one workflow over a year (seeded in ${(seedMs / 1000).toFixed(1)} s, trigger on); rollup rows: ${rollupRows}`)
  console.log(`check: totals.total = ${check.totals.total}, buckets = ${check.buckets.length}, p95 of the last full day = ${check.buckets.at(-2)?.p95_duration_ms} ms, success rate = ${check.totals.success_rate?.toFixed(3)}\n`)
  console.log('| query | calls | p50 ms | p99 ms |')
  console.log('|---|---|---|---|')
  for (const r of results) console.log(`| ${r.label} | ${r.n} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`)
  console.log('\n| ledger insert of 250 rows (one ingest page) | ms per statement |')
  console.log('|---|---|')
  console.log(`| with the rollup trigger | ${withTrigger.toFixed(2)} (again: ${withAgain.toFixed(2)}) |`)
  console.log(`| without it | ${without.toFixed(2)} |`)
} finally {
  await close()
}
