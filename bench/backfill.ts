// npm run bench:backfill — the first full sync after moving to this service (issue 12, item 7):
// a fresh database whose workflows never completed a pass (as onboarding leaves them), a simulated
// n8n (bench/sim-n8n.ts) holding each workflow's executions appended together (consecutive ids,
// workflow after workflow), then ONE POST /sync/all. Per size: wall time, peak RSS (VmHWM) of the
// service process, run with the production heap flags of `npm start`, and exactness.
//
// Before/after in the same run: BENCH_BASELINE names a checkout of another commit (default: a git
// worktree of 1983bf4, the code before the fix, made in /tmp on first use and reused); its
// bench/servers/sync-app.ts and its migrations run against the same simulator, on a database of
// its own. BENCH_BASELINE=none measures this checkout only.
//
// Sizes (env): BENCH_BACKFILL_SIZES=2000,5000,10000 (workflows) BENCH_BACKFILL_EXECUTIONS=10 (each)
//   BENCH_BACKFILL_WPU=10 (workflows per user) BENCH_BACKFILL_LATENCY_MS=20 BENCH_CONCURRENCY=64
//   Diagnostics: BENCH_CPU_PROF=<dir> (service processes write --cpu-prof there), BENCH_NODE_ARGS,
//   BENCH_MEM_TRACE=1 (heap peaks printed by the service at stop), BENCH_DEBUG_STATS=1
//   (pg_stat_user_tables of each database after the sync).
import { execFileSync, fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, symlinkSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { PRODUCTION_NODE_FLAGS, peakRssMb } from './lib.ts'
import { SimClient } from './sim-n8n.ts'
import type { SimWorkflow, Truth } from './sim-n8n.ts'

const here = new URL('.', import.meta.url).pathname
const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '')
const env = process.env
const SIZES = (env.BENCH_BACKFILL_SIZES ?? '2000,5000,10000').split(',').map((x) => Number(x.trim())).filter((n) => Number.isInteger(n) && n > 0)
const EXECS = Number(env.BENCH_BACKFILL_EXECUTIONS ?? 10)
const WPU = Number(env.BENCH_BACKFILL_WPU ?? 10)
const LATENCY = Number(env.BENCH_BACKFILL_LATENCY_MS ?? 20)
const CONCURRENCY = env.BENCH_CONCURRENCY ?? '64'
const BASE_COMMIT = '1983bf4'
const adminUrl = env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef'
const CRON_SECRET = 'bench-cron-' + randomBytes(24).toString('hex')

/** The baseline checkout: BENCH_BASELINE, or a worktree of BASE_COMMIT in /tmp (made once). */
function baselineDir (): string | null {
  const b = env.BENCH_BASELINE
  if (b === 'none') return null
  if (b) return b
  const dir = `/tmp/workflow-sync-base-${BASE_COMMIT}`
  if (!existsSync(`${dir}/src`)) execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', dir, BASE_COMMIT], { stdio: 'ignore' })
  if (!existsSync(`${dir}/node_modules`)) symlinkSync(`${root}/node_modules`, `${dir}/node_modules`)
  return dir
}

// ---- databases --------------------------------------------------------------------------------

function dbUrl (name: string): string {
  const u = new URL(adminUrl)
  u.pathname = `/${name}`
  return u.toString()
}
async function withClient<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}
const databases = new Set<string>()
async function dropDb (name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`))
  databases.delete(name)
}
/** A new database migrated with the migrations (and migrator) of checkout `dir`. */
async function freshDb (dir: string): Promise<string> {
  const name = `ws_bench_backfill_${randomBytes(4).toString('hex')}`
  await withClient(adminUrl, (c) => c.query(`create database ${name}`))
  databases.add(name)
  const { PgDatabase } = await import(`${dir}/src/db/pg-database.ts`) as typeof import('../src/db/pg-database.ts')
  const { migrate } = await import(`${dir}/src/db/migrate.ts`) as typeof import('../src/db/migrate.ts')
  const db = new PgDatabase({ connectionString: dbUrl(name), max: 2 })
  await migrate(db)
  await db.close()
  return name
}

// ---- a team's workflows -----------------------------------------------------------------------

interface Wf { id: string, n8nId: string, userId: string, name: string }

function team (size: number, run: number): Wf[] {
  const out: Wf[] = []
  let userId = ''
  for (let i = 0; i < size; i++) {
    if (i % WPU === 0) userId = randomUUID()
    out.push({ id: '', n8nId: `bf${run}x${i.toString(36).padStart(10, '0')}`, userId, name: `flow ${i % WPU}` })
  }
  return out
}
const tag = (userId: string): string => `[USR-${userId.replace(/-/g, '').slice(0, 8)}]`
const NODES = JSON.stringify([{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'p', httpMethod: 'POST' } }])

/** The rows as onboarding leaves them: deployed, n8n id set, never synced (no stop point). */
async function onboard (dbName: string, wfs: Wf[]): Promise<void> {
  await withClient(dbUrl(dbName), async (c) => {
    for (let i = 0; i < wfs.length; i += 5000) {
      const part = wfs.slice(i, i + 5000)
      const res = await c.query<{ id: string, n8n_workflow_id: string }>(
        `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id, nodes)
         select t.u, t.n, 'deployed', false, t.x, $4::jsonb from unnest($1::uuid[], $2::text[], $3::text[]) as t(u, n, x)
         returning id, n8n_workflow_id`,
        [part.map((w) => w.userId), part.map((w) => w.name), part.map((w) => w.n8nId), NODES])
      const byN8n = new Map(res.rows.map((r) => [r.n8n_workflow_id, r.id]))
      for (const w of part) w.id = byN8n.get(w.n8nId) ?? ''
    }
  })
}

/** Mismatching workflows (counts or ledger vs the simulator's truth); 0 = exact. */
async function mismatches (dbName: string, wfs: Wf[]): Promise<number> {
  const truth = await sim.request<Truth>({ op: 'truth', workflowIds: wfs.map((w) => w.n8nId) })
  return await withClient(dbUrl(dbName), async (c) => {
    const r = await c.query<{ n8n: string, n: number, ok: number, failed: number, ln: number, lok: number, lfailed: number }>(
      `select w.n8n_workflow_id as n8n, w.execution_count as n, w.successful_executions as ok, w.failed_executions as failed,
              coalesce(l.n, 0)::int as ln, coalesce(l.ok, 0)::int as lok, coalesce(l.failed, 0)::int as lfailed
         from mvp_workflows w
         left join (select workflow_id, count(*) filter (where count_category is not null) as n,
                           count(*) filter (where count_category = 'success') as ok,
                           count(*) filter (where count_category = 'failed') as failed
                      from workflow_executions group by workflow_id) l on l.workflow_id = w.id`)
    const byN8n = new Map(r.rows.map((x) => [x.n8n, x]))
    let bad = 0
    for (const w of wfs) {
      const t = truth[w.n8nId] ?? [0, 0, 0]
      const x = byN8n.get(w.n8nId)
      if (!x || [x.n, x.ok, x.failed].join() !== t.join() || [x.ln, x.lok, x.lfailed].join() !== t.join()) bad++
    }
    return bad
  })
}

// ---- the service ------------------------------------------------------------------------------

let profileNo = 0
async function startService (dir: string, dbName: string, label: string): Promise<{ child: ChildProcess, origin: string, stop(): Promise<void> }> {
  const execArgv = ['--disable-warning=ExperimentalWarning', ...PRODUCTION_NODE_FLAGS]
  if (env.BENCH_CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF}`, `--cpu-prof-name=backfill-${++profileNo}-${label}.cpuprofile`)
  if (env.BENCH_NODE_ARGS) execArgv.push(...env.BENCH_NODE_ARGS.split(' ').filter(Boolean))
  const child = fork(`${dir}/bench/servers/sync-app.ts`, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
    env: {
      ...env,
      BENCH_DATABASE_URL: dbUrl(dbName),
      BENCH_JWT_SECRET: JWT_SECRET,
      CRON_SECRET,
      N8N_API_URL: sim.baseUrl,
      N8N_CONCURRENCY: CONCURRENCY,
      BENCH_SYNC_ALL_STRATEGY: ''
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port?: number }) => resolve(m.port ?? 0))
    child.once('exit', (code) => reject(new Error(`sync-app exited with ${code}`)))
  })
  return {
    child,
    origin: `http://127.0.0.1:${port}`,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send('stop')
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(t)
    }
  }
}

interface Row { size: number, variant: string, wall: number, rss: number, bootRss: number, ingested: number, status: string, calls: number, bad: number, cpu: number, pgCpu: number }

/** CPU seconds (user + system) a process used so far; 0 once it is gone. */
function cpuSeconds (pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return 0
  }
}

/**
 * CPU seconds the database's backends spent while `fn` ran: the machine is shared, so wall time
 * is noisy; CPU time is the work done. Backends are sampled every 200 ms (one closing between two
 * samples loses at most that much).
 */
async function backendCpu<T> (dbName: string, fn: () => Promise<T>): Promise<{ value: T, seconds: number }> {
  const c = new pg.Client({ connectionString: adminUrl })
  await c.connect()
  const first = new Map<number, number>()
  const last = new Map<number, number>()
  const sample = async (): Promise<void> => {
    const r = await c.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName])
    for (const { pid } of r.rows) {
      const s = cpuSeconds(pid)
      if (!first.has(pid)) first.set(pid, s)
      last.set(pid, Math.max(last.get(pid) ?? 0, s))
    }
  }
  try {
    await sample()
    let done = false
    const loop = (async () => { while (!done) { await sleep(200); await sample() } })()
    const value = await fn().finally(() => { done = true })
    await loop
    await sample()
    let seconds = 0
    for (const [pid, s] of last) seconds += s - (first.get(pid) ?? 0)
    return { value, seconds }
  } finally {
    await c.end()
  }
}

async function measure (dir: string, variant: string, wfs: Wf[]): Promise<Row> {
  const dbName = await freshDb(dir)
  try {
    await onboard(dbName, wfs)
    if (env.BENCH_DEBUG_STATS) await withClient(adminUrl, (c) => c.query(`alter database ${dbName} set track_functions = 'all'`))
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
          const st = await c.query(`select relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_live_tup from pg_stat_user_tables where relname in ('workflow_executions', 'mvp_workflows', 'workflow_events', 'workflow_scan_floors')`)
          console.error(JSON.stringify(st.rows))
          const fn = await c.query(`select funcname, calls, round(total_time) as total_ms, round(self_time) as self_ms from pg_stat_user_functions order by total_time desc limit 8`)
          console.error(JSON.stringify(fn.rows))
        })
      }
      return { size: wfs.length, variant, wall, rss, bootRss, ingested: body.executions_ingested, status: body.status, calls, bad: await mismatches(dbName, wfs), cpu, pgCpu }
    } finally {
      await svc.stop()
    }
  } finally {
    await dropDb(dbName)
  }
}

// ---- run --------------------------------------------------------------------------------------

const fmt = (x: number): string => x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${(x / 1000).toFixed(2)} s`
const base = baselineDir()
const variants: Array<[string, string]> = base === null ? [['this', root]] : [['before', base], ['after', root]]
let sim = await SimClient.start()
const rows: Row[] = []
const started = performance.now()
try {
  console.error(`bench:backfill — node ${process.version}, sizes ${SIZES.join('/')} × ${EXECS}, ${LATENCY} ms, N8N_CONCURRENCY ${CONCURRENCY}, heap ${PRODUCTION_NODE_FLAGS.join(' ')}; ${variants.map(([v, d]) => `${v} = ${d}`).join(', ')}`)
  for (const [run, size] of SIZES.entries()) {
    // A simulated n8n of this team alone (the ceiling is this team's newest execution).
    if (run > 0) { await sim.stop(); sim = await SimClient.start() }
    const wfs = team(size, run)
    const simWfs: SimWorkflow[] = wfs.map((w) => ({ id: w.n8nId, name: `${tag(w.userId)} ${w.name}`, active: false }))
    for (let i = 0; i < simWfs.length; i += 5000) await sim.request({ op: 'addWorkflows', workflows: simWfs.slice(i, i + 5000) })
    await sim.request({ op: 'generate', spec: { workflowIds: wfs.map((w) => w.n8nId), perWorkflow: EXECS, interleave: false, seed: 7 } })
    await sim.request({ op: 'configure', latencyMs: LATENCY })
    for (const [variant, dir] of variants) {
      const r = await measure(dir, variant, wfs.map((w) => ({ ...w })))
      rows.push(r)
      console.error(`${variant} ${size}: ${fmt(r.wall)}, ${r.rss} MB, CPU ${r.cpu.toFixed(1)} s service + ${r.pgCpu.toFixed(1)} s Postgres, ${r.calls} n8n calls, ${r.ingested} ingested, ${r.status}, ${r.bad} mismatching workflows`)
    }
  }
} finally {
  await sim.stop().catch(() => {})
  for (const name of [...databases]) await dropDb(name).catch(() => {})
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
