// npm run bench:backfill — the first full sync after moving to this service (issue 12, item 7):
// a fresh database whose workflows never completed a pass (as onboarding leaves them), a simulated
// n8n (bench/sim-n8n.ts) holding each workflow's executions appended together (consecutive ids,
// workflow after workflow), then ONE POST /sync/all. Per size: wall time, peak RSS (VmHWM) of the
// service process, run with the production heap flags of `npm start`, and exactness.
//
// Before/after in the same run: BENCH_BASELINE names checkouts of other commits (default: a git
// worktree of 1983bf4, the code before the fix, made in /tmp on first use and reused; several:
// `label=dir,label=dir`); their bench/servers/sync-app.ts and migrations run against the same
// simulator, each on a database of its own. BENCH_BASELINE=none measures this checkout only.
//
// Sizes (env): BENCH_BACKFILL_SIZES=2000,5000,10000 (workflows) BENCH_BACKFILL_EXECUTIONS=10 (each)
//   BENCH_BACKFILL_WPU=10 (workflows per user) BENCH_BACKFILL_LATENCY_MS=20 BENCH_CONCURRENCY=64
//   Diagnostics: BENCH_CPU_PROF=<dir> (service processes write --cpu-prof there), BENCH_NODE_ARGS,
//   BENCH_MEM_TRACE=1 (heap peaks printed by the service at stop), BENCH_DEBUG_STATS=1
//   (pg_stat_user_tables of each database after the sync).
import { randomUUID } from 'node:crypto'
import { ADMIN_URL, BenchDatabases, CRON_SECRET, PRODUCTION_NODE_FLAGS, ROOT as root, WEBHOOK_NODES, backendCpu, baselines, cpuSeconds, dbUrl, ledgerMismatches, peakRssMb, startSyncApp, userTag as tag, withClient, worktreeOf } from './lib.ts'
import type { Service } from './lib.ts'
import { SimClient } from './sim-n8n.ts'
import type { SimWorkflow } from './sim-n8n.ts'

const env = process.env
const SIZES = (env.BENCH_BACKFILL_SIZES ?? '2000,5000,10000').split(',').map((x) => Number(x.trim())).filter((n) => Number.isInteger(n) && n > 0)
const EXECS = Number(env.BENCH_BACKFILL_EXECUTIONS ?? 10)
const WPU = Number(env.BENCH_BACKFILL_WPU ?? 10)
const LATENCY = Number(env.BENCH_BACKFILL_LATENCY_MS ?? 20)
const CONCURRENCY = env.BENCH_CONCURRENCY ?? '64'
const BASE_COMMIT = '1983bf4'

const databases = new BenchDatabases('ws_bench_backfill')

// ---- a team's workflows -----------------------------------------------------------------------

interface Wf { id: string, n8nId: string, userId: string, name: string }

function team (size: number, run: number): Wf[] {
  const out: Wf[] = []
  let userId = ''
  for (let i = 0; i < size; i++) {
    if (i % WPU === 0) userId = randomUUID()
    out.push({ id: randomUUID(), n8nId: `bf${run}x${i.toString(36).padStart(10, '0')}`, userId, name: `flow ${i % WPU}` })
  }
  return out
}

/**
 * The rows as onboarding leaves them: deployed, n8n id set (n8n's copy carries the row's marker),
 * never synced (no stop point). Row ids are fixed per team, so every variant's database matches
 * the same simulated n8n.
 */
async function onboard (dbName: string, wfs: Wf[]): Promise<void> {
  await withClient(dbUrl(dbName), async (c) => {
    for (let i = 0; i < wfs.length; i += 5000) {
      const part = wfs.slice(i, i + 5000)
      await c.query(
        `insert into mvp_workflows (id, user_id, name, status, active, n8n_workflow_id, nodes)
         select t.i, t.u, t.n, 'deployed', false, t.x, $5::jsonb from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) as t(i, u, n, x)`,
        [part.map((w) => w.id), part.map((w) => w.userId), part.map((w) => w.name), part.map((w) => w.n8nId), WEBHOOK_NODES])
    }
  })
}

/** Mismatching workflows (counts or ledger vs the simulator's truth); 0 = exact. */
async function mismatches (dbName: string, wfs: Wf[]): Promise<number> {
  return await withClient(dbUrl(dbName), (c) => ledgerMismatches(c, sim, wfs))
}

// ---- the service ------------------------------------------------------------------------------

let profileNo = 0
async function startService (dir: string, dbName: string, label: string): Promise<Service> {
  const execArgv = [...PRODUCTION_NODE_FLAGS]
  if (env.BENCH_CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF}`, `--cpu-prof-name=backfill-${++profileNo}-${label}.cpuprofile`)
  if (env.BENCH_NODE_ARGS) execArgv.push(...env.BENCH_NODE_ARGS.split(' ').filter(Boolean))
  return await startSyncApp({ dir, dbName, n8nUrl: sim.baseUrl, execArgv, env: { N8N_CONCURRENCY: CONCURRENCY, BENCH_SYNC_ALL_STRATEGY: '' } })
}

interface Row { size: number, variant: string, wall: number, rss: number, bootRss: number, ingested: number, status: string, calls: number, bad: number, cpu: number, pgCpu: number }

async function measure (dir: string, variant: string, wfs: Wf[]): Promise<Row> {
  const dbName = await databases.migrated(dir)
  try {
    await onboard(dbName, wfs)
    if (env.BENCH_DEBUG_STATS) await withClient(ADMIN_URL, (c) => c.query(`alter database ${dbName} set track_functions = 'all'`))
    const svc = await startService(dir, dbName, `${variant}-${wfs.length}`)
    try {
      const warm = await fetch(`${svc.origin}/sync/logs?limit=1`, { headers: { authorization: `Bearer ${CRON_SECRET}` } })
      await warm.arrayBuffer()
      const bootRss = peakRssMb(svc.child.pid)
      await sim.request({ op: 'resetCounters' })
      const cpu0 = cpuSeconds(svc.child.pid)
      const t0 = performance.now()
      const { value: [res, body], seconds: pgCpu } = await backendCpu(dbName, async () => {
        const res = await fetch(`${svc.origin}/sync/all`, { method: 'POST', headers: { authorization: `Bearer ${CRON_SECRET}`, 'content-type': 'application/json' }, body: '{}' })
        return [res, await res.json() as { status: string, executions_ingested: number }] as const
      })
      const wall = performance.now() - t0
      const cpu = cpuSeconds(svc.child.pid) - cpu0
      const rss = peakRssMb(svc.child.pid)
      if (res.status !== 200) throw new Error(`/sync/all answered ${res.status}: ${JSON.stringify(body)}`)
      const calls = Object.values(await sim.request<Record<string, number>>({ op: 'counters' })).reduce((a, b) => a + b, 0)
      if (env.BENCH_DEBUG_STATS) {
        await withClient(dbUrl(dbName), async (c) => {
          const st = await c.query('select relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_live_tup from pg_stat_user_tables where relname in (\'workflow_executions\', \'mvp_workflows\', \'workflow_events\', \'workflow_scan_floors\')')
          console.error(JSON.stringify(st.rows))
          const fn = await c.query('select funcname, calls, round(total_time) as total_ms, round(self_time) as self_ms from pg_stat_user_functions order by total_time desc limit 8')
          console.error(JSON.stringify(fn.rows))
        })
      }
      return { size: wfs.length, variant, wall, rss, bootRss, ingested: body.executions_ingested, status: body.status, calls, bad: await mismatches(dbName, wfs), cpu, pgCpu }
    } finally {
      await svc.stop()
    }
  } finally {
    await databases.drop(dbName)
  }
}

// ---- run --------------------------------------------------------------------------------------

const fmt = (x: number): string => x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${(x / 1000).toFixed(2)} s`
const base = baselines(() => worktreeOf(BASE_COMMIT))
const variants: Array<[string, string]> = base.length === 0 ? [['this', root]] : [...base, ['after', root]]
let sim = await SimClient.start()
const rows: Row[] = []
const started = performance.now()
try {
  console.error(`bench:backfill — node ${process.version}, sizes ${SIZES.join('/')} × ${EXECS}, ${LATENCY} ms, N8N_CONCURRENCY ${CONCURRENCY}, heap ${PRODUCTION_NODE_FLAGS.join(' ')}; ${variants.map(([v, d]) => `${v} = ${d}`).join(', ')}`)
  for (const [run, size] of SIZES.entries()) {
    // A simulated n8n of this team alone (the ceiling is this team's newest execution).
    if (run > 0) { await sim.stop(); sim = await SimClient.start() }
    const wfs = team(size, run)
    const simWfs: SimWorkflow[] = wfs.map((w) => ({ id: w.n8nId, name: `${tag(w.userId)} ${w.name}`, active: false, rowId: w.id, userId: w.userId }))
    for (let i = 0; i < simWfs.length; i += 5000) await sim.request({ op: 'addWorkflows', workflows: simWfs.slice(i, i + 5000) })
    await sim.request({ op: 'generate', spec: { workflowIds: wfs.map((w) => w.n8nId), perWorkflow: EXECS, interleave: false, seed: 7 } })
    await sim.request({ op: 'configure', latencyMs: LATENCY })
    for (const [variant, dir] of variants) {
      const r = await measure(dir, variant, wfs)
      rows.push(r)
      console.error(`${variant} ${size}: ${fmt(r.wall)}, ${r.rss} MB, CPU ${r.cpu.toFixed(1)} s service + ${r.pgCpu.toFixed(1)} s Postgres, ${r.calls} n8n calls, ${r.ingested} ingested, ${r.status}, ${r.bad} mismatching workflows`)
    }
  }
} finally {
  await sim.stop().catch(() => {})
  await databases.dropAll()
}

const out: string[] = []
out.push(`\n## bench:backfill — node ${process.version}, ${new Date().toISOString()}, whole run ${fmt(performance.now() - started)}\n`)
out.push(`First POST /sync/all on a fresh database, ${WPU} workflows per user, ${EXECS} executions each (appended per workflow), ${LATENCY} ms n8n latency, N8N_CONCURRENCY ${CONCURRENCY}, node ${PRODUCTION_NODE_FLAGS.join(' ')}.\n`)
out.push(`| workflows | ${variants.map(([v]) => `${v}: wall | ${v}: peak RSS MB (boot) | ${v}: CPU s service + Postgres | ${v}: n8n calls | ${v}: exact`).join(' | ')} |`)
out.push(`|---|${variants.map(() => '---|---|---|---|---').join('|')}|`)
for (const size of SIZES) {
  const cells = variants.map(([v]) => {
    const r = rows.find((x) => x.size === size && x.variant === v)
    return r ? `**${fmt(r.wall)}** | **${r.rss}** (${r.bootRss}) | ${r.cpu.toFixed(1)} + ${r.pgCpu.toFixed(1)} | ${r.calls} | ${r.bad === 0 && r.status === 'success' && r.ingested === size * EXECS ? 'yes' : `NO (${r.bad} workflows, ${r.status}, ${r.ingested} ingested)`}` : '- | - | - | - | -'
  })
  out.push(`| ${size.toLocaleString('en')} | ${cells.join(' | ')} |`)
}
const ratios = variants.map(([v]) => {
  const parts: string[] = []
  for (let i = 1; i < SIZES.length; i++) {
    const a = rows.find((x) => x.size === SIZES[i - 1] && x.variant === v)
    const b = rows.find((x) => x.size === SIZES[i] && x.variant === v)
    if (a && b) parts.push(`${SIZES[i]}/${SIZES[i - 1]}: ${(b.wall / a.wall).toFixed(2)}× time, ${((b.cpu + b.pgCpu) / (a.cpu + a.pgCpu)).toFixed(2)}× CPU for ${((SIZES[i] as number) / (SIZES[i - 1] as number)).toFixed(1)}× workflows`)
  }
  return `${v}: ${parts.join(', ')}`
})
out.push(`\nGrowth: ${ratios.join('; ')}. Targets: 10,000 ≤ 15 s, ≤ 200 MB, 10,000/5,000 ≤ 2.2×.`)
console.log(out.join('\n'))
