// npm run bench:sync — the sync engine through HTTP against a simulated n8n (bench/sim-n8n.ts),
// on fresh server Postgres databases, with the machine's bare numbers measured in the same run.
// The service runs in its own process per configuration (peak RSS = its VmHWM), the simulator in
// another; this process only drives them. These machines are noisy: compare side by side.
//
//   P1  POST /sync, one user with 100 workflows, 50 ms n8n latency, 20 new executions each (≤ 0.3 s)
//   P5  the same sync again, nothing new: n8n calls and rows written (≤ 1 call per workflow, 0 rows)
//   P2  POST /sync/all, 1,000 users × 10 workflows, 100,000 new executions, 20 ms (≤ 15 s, ≤ 200 MB),
//       per /sync/all strategy (instance scan vs per workflow), then again with nothing new
//   a sweep of N8N_CONCURRENCY over P1 and P2
//
// Sizes (env): BENCH_P1_WORKFLOWS=100 BENCH_P1_EXECUTIONS=20 BENCH_P1_LATENCY_MS=50 BENCH_P1_REPS=5
//   BENCH_P2_USERS=1000 BENCH_P2_WORKFLOWS_PER_USER=10 BENCH_P2_EXECUTIONS=100000
//   BENCH_P2_LATENCY_MS=20 BENCH_P2_RUNNING_RATE=0.001 BENCH_CONCURRENCY=4,8,16,32,64
//   BENCH_P2_SCAN_CONCURRENCY=<BENCH_CONCURRENCY> BENCH_P2_PW_CONCURRENCY=8,16,32,64 (per_workflow is
//   slow at low concurrency) BENCH_STRATEGIES=scan,per_workflow BENCH_P2_RESYNC=1 (0: skip the
//   nothing-new /sync/all, run after the last P2 run of each strategy) BENCH_SKIP_P1=1 BENCH_SKIP_P2=1
//   BENCH_P2_CAPPED_ARGS='--max-semi-space-size=4 --max-old-space-size=128' (one more P2 run per
//   strategy at its last concurrency with these V8 flags: '' to skip)
//   Diagnostics: BENCH_CPU_PROF=<dir> (service processes run with --cpu-prof into <dir>);
//   BENCH_NODE_ARGS (more node flags for them); BENCH_MEM_TRACE=1 (they print heap/RSS peaks;
//   with BENCH_HEAP_SNAPSHOT_MB=<n>, a heap snapshot once heapUsed passes n MB);
//   BENCH_DEBUG_STATS=1 (pg_stat_user_tables of each P2 database); BENCH_SCAN_BUFFER,
//   BENCH_INGEST_LANES (the engine's scanBufferLimit and ingestLanes)
// Before/after in the same run: BENCH_BASELINE=<dir> (or `label=dir,label=dir`), checkouts of
//   other commits with their node_modules: every case (P1/P5 per concurrency, each P2 run) runs
//   for each checkout in turn, then for this one ("after"), each on a database migrated with its
//   own migrations, against the same simulator; one table per part, a row per checkout and case.
//   Service and Postgres CPU seconds are reported beside wall time (the machine is shared).
// Quick run: BENCH_P2_USERS=100 BENCH_P2_EXECUTIONS=10000 BENCH_CONCURRENCY=8,32 npm run bench:sync
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { BenchDatabases, CRON_SECRET, ROOT, backendCpu, baselines, cpuSeconds, dbUrl, ledgerMismatches, makeUsers as makeBenchUsers, num, nums, peakRssMb, seedWorkflows, simWorkflows, startSyncApp, withClient } from './lib.ts'
import type { BenchUser, BenchWf, Service } from './lib.ts'
import { SimClient } from './sim-n8n.ts'
import type { GenerateResult, SimStats } from './sim-n8n.ts'

// ---- settings ---------------------------------------------------------------------------------

const P1_WORKFLOWS = num('BENCH_P1_WORKFLOWS', 100)
const P1_EXECS = num('BENCH_P1_EXECUTIONS', 20)
const P1_LATENCY = num('BENCH_P1_LATENCY_MS', 50)
const P1_REPS = Math.max(1, num('BENCH_P1_REPS', 5))
const P2_USERS = num('BENCH_P2_USERS', 1000)
const P2_WPU = num('BENCH_P2_WORKFLOWS_PER_USER', 10)
const P2_NEW = num('BENCH_P2_EXECUTIONS', 100_000)
const P2_LATENCY = num('BENCH_P2_LATENCY_MS', 20)
const P2_RUNNING = num('BENCH_P2_RUNNING_RATE', 0.001)
const SWEEP = nums('BENCH_CONCURRENCY', '4,8,16,32,64')
const P2_SCAN_SWEEP = nums('BENCH_P2_SCAN_CONCURRENCY', SWEEP.join(','))
const P2_PW_SWEEP = nums('BENCH_P2_PW_CONCURRENCY', '8,16,32,64')
const P2_CAPPED_ARGS = process.env.BENCH_P2_CAPPED_ARGS ?? '--max-semi-space-size=4 --max-old-space-size=128'
const STRATEGIES = (process.env.BENCH_STRATEGIES ?? 'scan,per_workflow').split(',').map((s) => s.trim()).filter(Boolean)
const P2_RESYNC = num('BENCH_P2_RESYNC', 1) > 0
const SKIP_P1 = num('BENCH_SKIP_P1', 0) > 0
const SKIP_P2 = num('BENCH_SKIP_P2', 0) > 0
const CPU_PROF = process.env.BENCH_CPU_PROF

const started = performance.now()
const base0 = baselines()
const variants: Array<[string, string]> = base0.length === 0 ? [['this', ROOT]] : [...base0, ['after', ROOT]]

// ---- databases, users, workflows --------------------------------------------------------------

const databases = new BenchDatabases('ws_bench_sync')

let n8nCounter = 0
function n8nId (): string {
  return 'sim' + (++n8nCounter).toString(36).padStart(13, '0')
}
async function makeUsers (count: number, perUser: number, label: string): Promise<BenchUser[]> {
  return await makeBenchUsers(count, perUser, label, n8nId)
}

// ---- the service ------------------------------------------------------------------------------

let profileNo = 0

/** Checkout `dir`'s service (bench/servers/sync-app.ts) on database `dbName`. */
async function startService (dir: string, dbName: string, concurrency: number, strategy = '', nodeArgs = ''): Promise<Service> {
  const execArgv = nodeArgs.split(' ').filter(Boolean)
  if (CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=sync-${++profileNo}-${strategy || 'default'}-c${concurrency}.cpuprofile`)
  if (process.env.BENCH_NODE_ARGS) execArgv.push(...process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean))
  return await startSyncApp({ dir, dbName, n8nUrl: sim.baseUrl, execArgv, env: { N8N_CONCURRENCY: String(concurrency), BENCH_SYNC_ALL_STRATEGY: strategy } })
}

interface SyncAnswer { status: string, workflows_synced: number, workflows_failed: number, executions_ingested: number, duration_ms: number, errors: unknown[] }

async function post (origin: string, path: string, token: string): Promise<{ ms: number, body: SyncAnswer }> {
  const t0 = performance.now()
  const res = await fetch(origin + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })
  const body = await res.json() as SyncAnswer
  const ms = performance.now() - t0
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(body)}`)
  return { ms, body }
}

/** `post`, with the CPU seconds the service process and the database's backends spent on it. */
async function postMeasured (svc: Service, dbName: string, path: string, token: string): Promise<{ ms: number, body: SyncAnswer, cpu: number, pgCpu: number }> {
  const cpu0 = cpuSeconds(svc.child.pid)
  const { value, seconds } = await backendCpu(dbName, () => post(svc.origin, path, token))
  return { ...value, cpu: cpuSeconds(svc.child.pid) - cpu0, pgCpu: seconds }
}

// ---- measurements -----------------------------------------------------------------------------

function sumCalls (c: Record<string, number>): number {
  return Object.values(c).reduce((a, b) => a + b, 0)
}
function fmtCalls (c: Record<string, number>): string {
  const short: Record<string, string> = {
    'GET /executions (instance, first page)': 'instance 1st page',
    'GET /executions?status=running': 'running',
    'GET /executions?workflowId': 'per-wf list',
    'GET /executions (instance, cursor)': 'instance page',
    'GET /executions/:id': 'by id',
    'GET /workflows': 'wf list',
    'GET /workflows/:id': 'wf get'
  }
  return Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${short[k] ?? k} ${v}`).join(', ')
}

/** Physical row versions of a user's rows: an INSERT or UPDATE always makes a new xmin. */
async function rowVersions (c: pg.Client, userId: string): Promise<Map<string, string>> {
  const r = await c.query<{ k: string, v: string }>(
    `select 'e' || id::text as k, xmin::text as v from workflow_executions where user_id = $1
     union all select 'w' || id::text, xmin::text from mvp_workflows where user_id = $1`, [userId])
  return new Map(r.rows.map((x) => [x.k, x.v]))
}
function written (before: Map<string, string>, after: Map<string, string>): { ledger: number, workflows: number } {
  let ledger = 0; let workflows = 0
  for (const [k, v] of after) {
    if (before.get(k) === v) continue
    if (k.startsWith('e')) ledger++
    else workflows++
  }
  return { ledger, workflows }
}

/** Counts and the ledger equal the simulator's truth for every workflow given. */
async function exactness (c: pg.Client, wfs: BenchWf[]): Promise<{ ok: boolean, mismatches: number }> {
  const mismatches = await ledgerMismatches(c, sim, wfs)
  return { ok: mismatches === 0, mismatches }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}
const ms = (x: number): string => x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`

// ---- bare baselines ---------------------------------------------------------------------------

async function timerLoop (n: number, latency: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await sleep(latency)
  return (performance.now() - t0) / n
}

/** A trivial client: `conns` loops of sequential GETs for `seconds`; req/s and mean ms. */
async function simLoad (path: string, conns: number, seconds: number): Promise<{ rps: number, mean: number }> {
  const url = sim.baseUrl + path
  const until = performance.now() + seconds * 1000
  let n = 0
  let total = 0
  await Promise.all(Array.from({ length: conns }, async () => {
    while (performance.now() < until) {
      const t0 = performance.now()
      const res = await fetch(url, { headers: { 'x-n8n-api-key': 'k' } })
      await res.arrayBuffer()
      total += performance.now() - t0
      n++
    }
  }))
  return { rps: Math.round(n / seconds), mean: total / n }
}

// ---- run --------------------------------------------------------------------------------------

const sim = await SimClient.start()
let stopping = false
async function cleanup (): Promise<void> {
  if (stopping) return
  stopping = true
  await sim.stop().catch(() => {})
  await databases.dropAll()
}
process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)) })

const report: string[] = []
const out = (line = ''): void => { report.push(line) }

try {
  console.error(`bench:sync — node ${process.version}, P1 ${P1_WORKFLOWS} wf × ${P1_EXECS} @ ${P1_LATENCY} ms, P2 ${P2_USERS}×${P2_WPU} wf, ${P2_NEW} new @ ${P2_LATENCY} ms, concurrency ${SWEEP.join('/')}, P2 scan ${P2_SCAN_SWEEP.join('/')}, per_workflow ${P2_PW_SWEEP.join('/')}, strategies ${STRATEGIES.join('/')}`)

  // P1 users first (so P2's instance scan never reaches their executions).
  const p1Users = new Map<number, BenchUser[]>()
  const warmUsers = new Map<number, BenchUser>()
  // One P1 database per checkout (its own migrations), the same users and workflows in each.
  const p1Dbs = new Map<string, string>()
  if (!SKIP_P1) {
    const all: BenchUser[] = []
    for (const c of SWEEP) {
      const [warm] = await makeUsers(1, 10, `warm${c}-`)
      const reps = await makeUsers(P1_REPS, P1_WORKFLOWS, `p1c${c}-`)
      warmUsers.set(c, warm as BenchUser)
      p1Users.set(c, reps)
      all.push(warm as BenchUser, ...reps)
    }
    for (const [variant, dir] of variants) {
      const name = await databases.migrated(dir)
      await seedWorkflows(name, all, null)
      p1Dbs.set(variant, name)
    }
    await sim.request({ op: 'addWorkflows', workflows: simWorkflows(all) })
    let s = 1
    for (const u of all) {
      await sim.request<GenerateResult>({ op: 'generate', spec: { workflowIds: u.workflows.map((w) => w.n8nId), perWorkflow: u.workflows.length === 10 ? 5 : P1_EXECS, seed: s++ } })
    }
  }

  // ---- baselines
  const base: string[][] = []
  for (const lat of [...new Set([P1_LATENCY, P2_LATENCY])]) {
    const n = Math.max(10, Math.round(1000 / Math.max(1, lat)))
    const wait = await timerLoop(n, lat)
    base.push([`${n} sequential setTimeout(${lat} ms) in a plain loop`, `${wait.toFixed(1)} ms each`])
  }
  const probeWf = p1Users.get(SWEEP[0] as number)?.[0]?.workflows[0]?.n8nId ?? 'none'
  for (const lat of [...new Set([P1_LATENCY, P2_LATENCY])]) {
    await sim.request({ op: 'configure', latencyMs: lat })
    const seqr = await simLoad(`/executions?workflowId=${probeWf}&limit=250`, 1, 1)
    base.push([`simulator, 1 client, sequential GET /executions?workflowId (${P1_EXECS} items) @ ${lat} ms`, `${seqr.mean.toFixed(1)} ms per call (${seqr.rps} req/s)`])
    for (const c of [...new Set([8, Math.max(...SWEEP)])]) {
      const r = await simLoad(`/executions?workflowId=${probeWf}&limit=250`, c, 1.5)
      base.push([`simulator, ${c} parallel clients, same call @ ${lat} ms`, `${r.rps} req/s (ideal ${Math.round(c * 1000 / lat)}), ${r.mean.toFixed(1)} ms per call`])
    }
  }
  await sim.request({ op: 'configure', latencyMs: 0 })
  const max = await simLoad(`/executions?workflowId=${probeWf}&limit=250`, 16, 1.5)
  base.push(['simulator max, 16 parallel clients, 0 ms latency', `${max.rps} req/s`])
  await sim.request({ op: 'resetCounters' })

  // ---- P1 / P5 per concurrency
  interface P1Row { variant: string, c: number, cpu: number, pgCpu: number, walls: number[], calls: number, ingested: number, rows: { ledger: number, workflows: number }, exact: boolean, p5calls: number, p5callsDetail: string, p5rows: { ledger: number, workflows: number }, p5wall: number, rss: number, callsDetail: string }
  const p1Rows: P1Row[] = []
  if (!SKIP_P1) {
    await sim.request({ op: 'configure', latencyMs: P1_LATENCY })
    for (const c of SWEEP) {
      for (const [variant, dir] of variants) {
        const p1Db = p1Dbs.get(variant) as string
        const svc = await startService(dir, p1Db, c)
        try {
          await post(svc.origin, '/sync', (warmUsers.get(c) as BenchUser).token) // warm-up: JIT, pool, zod
          const row: P1Row = { variant, c, cpu: 0, pgCpu: 0, walls: [], calls: 0, ingested: 0, rows: { ledger: 0, workflows: 0 }, exact: true, p5calls: 0, p5callsDetail: '', p5rows: { ledger: 0, workflows: 0 }, p5wall: 0, rss: 0, callsDetail: '' }
          await withClient(dbUrl(p1Db), async (db) => {
            for (const u of p1Users.get(c) ?? []) {
              const v0 = await rowVersions(db, u.id)
              await sim.request({ op: 'resetCounters' })
              const r1 = await postMeasured(svc, p1Db, '/sync', u.token)
              row.cpu += r1.cpu
              row.pgCpu += r1.pgCpu
              const calls = await sim.request<Record<string, number>>({ op: 'counters' })
              const v1 = await rowVersions(db, u.id)
              const ex = await exactness(db, u.workflows)
              row.walls.push(r1.ms)
              row.calls = sumCalls(calls)
              row.callsDetail = fmtCalls(calls)
              row.ingested = r1.body.executions_ingested
              row.rows = written(v0, v1)
              row.exact &&= ex.ok && r1.body.status === 'success'
              // P5: the same sync again, nothing new
              await sim.request({ op: 'resetCounters' })
              const r5 = await post(svc.origin, '/sync', u.token)
              const calls5 = await sim.request<Record<string, number>>({ op: 'counters' })
              row.p5calls = sumCalls(calls5)
              row.p5callsDetail = fmtCalls(calls5)
              row.p5rows = written(v1, await rowVersions(db, u.id))
              row.p5wall = r5.ms
              row.exact &&= (await exactness(db, u.workflows)).ok && r5.body.status === 'success'
            }
          })
          row.rss = peakRssMb(svc.child.pid)
          p1Rows.push(row)
          console.error(`P1 ${variant} c=${c}: ${row.walls.map(ms).join(' / ')}; P5 ${row.p5calls} calls`)
        } finally {
          await svc.stop()
        }
      }
    }
    for (const name of p1Dbs.values()) await databases.drop(name)
  }

  // ---- P2 per strategy and concurrency
  interface P2Row { variant: string, strategy: string, cpu: number, pgCpu: number, c: number, nodeArgs: string, bootRss: number, wall: number, engineMs: number, calls: number, callsDetail: string, ledger: number, workflowsWritten: number, ingested: number, rss: number, exact: boolean, mismatches: number, status: string, re?: { wall: number, calls: number, callsDetail: string, ledger: number, workflows: number } }
  const p2Rows: P2Row[] = []
  let p2Info = ''
  if (!SKIP_P2) {
    const users = await makeUsers(P2_USERS, P2_WPU, 'p2-')
    const wfs = users.flatMap((u) => u.workflows)
    const before = await sim.request<SimStats>({ op: 'stats' })
    // The template: every workflow synced once before these executions existed (its stop point is
    // the instance's newest id then, as a completed pass leaves it; no execution of it lies below).
    const templates = new Map<string, string>()
    for (const [variant, dir] of variants) {
      const name = await databases.migrated(dir)
      await seedWorkflows(name, users, before.maxId)
      templates.set(variant, name)
    }
    // After the seed: n8n's copies carry the rows' markers (row ids), as deploys leave them.
    await sim.request({ op: 'addWorkflows', workflows: simWorkflows(users) })
    const perWf = Math.max(1, Math.round(P2_NEW / wfs.length))
    const gen = await sim.request<GenerateResult>({ op: 'generate', spec: { workflowIds: wfs.map((w) => w.n8nId), perWorkflow: perWf, runningRate: P2_RUNNING, seed: 42 } })
    p2Info = `${wfs.length} workflows, ${gen.count} new executions (ids ${gen.firstId}–${gen.lastId}, ${gen.running} left running = hidden), instance total ${gen.lastId}`
    console.error(`P2: ${p2Info}`)
    await sim.request({ op: 'configure', latencyMs: P2_LATENCY })
    {
      // The scan's bare cost: a trivial client following the cursor over 250-item instance pages.
      let cursor: string | null = null
      const n = 40
      const t0 = performance.now()
      for (let i = 0; i < n; i++) {
        const res = await fetch(`${sim.baseUrl}/executions?limit=250${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: { 'x-n8n-api-key': 'k' } })
        const page = await res.json() as { nextCursor: string | null }
        cursor = page.nextCursor
      }
      const per = (performance.now() - t0) / n
      base.push([`simulator, 1 client, ${n} sequential instance pages of 250 (cursor) @ ${P2_LATENCY} ms, JSON.parse only`, `${per.toFixed(1)} ms per page → ${ms(per * Math.ceil(P2_NEW / 250))} for ${Math.ceil(P2_NEW / 250)} pages`])
    }
    await sim.request({ op: 'resetCounters' })
    const runs: Array<{ strategy: string, c: number, resync: boolean, nodeArgs: string }> = []
    for (const strategy of STRATEGIES) {
      const sweep = strategy === 'per_workflow' ? P2_PW_SWEEP : P2_SCAN_SWEEP
      sweep.forEach((c, i) => runs.push({ strategy, c, resync: P2_RESYNC && i === sweep.length - 1, nodeArgs: '' }))
      const last = sweep.at(-1)
      if (P2_CAPPED_ARGS.trim() !== '' && last !== undefined) runs.push({ strategy, c: last, resync: false, nodeArgs: P2_CAPPED_ARGS })
    }
    for (const { strategy, c, resync, nodeArgs } of runs) {
      for (const [variant, dir] of variants) {
        const dbName = await databases.create(templates.get(variant))
        const svc = await startService(dir, dbName, c, strategy, nodeArgs)
        try {
          const warm = await fetch(`${svc.origin}/sync/logs?limit=1`, { headers: { authorization: `Bearer ${CRON_SECRET}` } })
          await warm.arrayBuffer()
          const bootRss = peakRssMb(svc.child.pid)
          await sim.request({ op: 'resetCounters' })
          const r = await postMeasured(svc, dbName, '/sync/all', CRON_SECRET)
          const rss = peakRssMb(svc.child.pid)
          const calls = await sim.request<Record<string, number>>({ op: 'counters' })
          const row: P2Row = { variant, strategy, c, cpu: r.cpu, pgCpu: r.pgCpu, nodeArgs, bootRss, wall: r.ms, engineMs: r.body.duration_ms, calls: sumCalls(calls), callsDetail: fmtCalls(calls), ledger: 0, workflowsWritten: 0, ingested: r.body.executions_ingested, rss, exact: false, mismatches: 0, status: r.body.status }
          await withClient(dbUrl(dbName), async (db) => {
            const ex = await exactness(db, wfs)
            row.exact = ex.ok && r.body.status === 'success'
            row.mismatches = ex.mismatches
            row.ledger = Number((await db.query<{ n: number }>('select count(*)::int as n from workflow_executions')).rows[0]?.n ?? 0)
            row.workflowsWritten = Number((await db.query<{ n: number }>('select count(*)::int as n from mvp_workflows where last_sync_at is not null')).rows[0]?.n ?? 0)
            if (resync) {
              // Rows written from here on have an xmin above this transaction id (no wraparound in a bench).
              const mark = Number((await db.query<{ x: string }>('select (txid_current() % 4294967296)::text as x')).rows[0]?.x)
              await sim.request({ op: 'resetCounters' })
              const r2 = await post(svc.origin, '/sync/all', CRON_SECRET)
              const calls2 = await sim.request<Record<string, number>>({ op: 'counters' })
              const w = (await db.query<{ ledger: number, workflows: number }>(
                `select (select count(*)::int from workflow_executions where xmin::text::bigint > $1) as ledger,
                        (select count(*)::int from mvp_workflows where xmin::text::bigint > $1) as workflows`, [mark])).rows[0]
              row.re = { wall: r2.ms, calls: sumCalls(calls2), callsDetail: fmtCalls(calls2), ledger: w?.ledger ?? -1, workflows: w?.workflows ?? -1 }
              row.exact &&= (await exactness(db, wfs)).ok && r2.body.status === 'success'
            }
          })
          if (process.env.BENCH_DEBUG_STATS) {
            await withClient(dbUrl(dbName), async (db) => {
              const st = await db.query('select relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_live_tup, n_dead_tup from pg_stat_user_tables where relname in (\'workflow_executions\', \'mvp_workflows\', \'workflow_events\', \'workflow_scan_floors\')')
              console.error(JSON.stringify(st.rows))
            })
          }
          p2Rows.push(row)
          console.error(`P2 ${variant} ${strategy} c=${c}${nodeArgs ? ` [${nodeArgs}]` : ''}: ${ms(row.wall)}, ${row.calls} calls, ${row.rss} MB, CPU ${row.cpu.toFixed(1)} s service + ${row.pgCpu.toFixed(1)} s Postgres, exact ${row.exact}${row.re ? `; again: ${ms(row.re.wall)}, ${row.re.calls} calls` : ''}`)
        } finally {
          await svc.stop()
          await databases.drop(dbName)
        }
      }
    }
    for (const name of templates.values()) await databases.drop(name)
  }

  // ---- report
  out(`\n## bench:sync — node ${process.version}, ${new Date().toISOString()}, whole run ${ms(performance.now() - started)}; ${variants.map(([v, d]) => `${v} = ${d}`).join(', ')}\n`)
  out('### Bare numbers of this machine (same run)\n')
  out('| measurement | result |')
  out('|---|---|')
  for (const [k, v] of base) out(`| ${k} | ${v} |`)
  if (p1Rows.length > 0) {
    out(`\n### P1 and P5: POST /sync, ${P1_WORKFLOWS} workflows, ${P1_EXECS} new executions each, ${P1_LATENCY} ms n8n latency (${P1_REPS} users per row, median)\n`)
    out('| N8N_CONCURRENCY | checkout | P1 wall (median; all) | latency floor¹ | P1 CPU s service + Postgres (all users) | n8n calls | rows written (ledger + workflows) | exact | P5 wall | P5 n8n calls | P5 rows written | peak RSS MB |')
    out('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for (const r of p1Rows) {
      const floorMs = (2 + Math.ceil(P1_WORKFLOWS / r.c)) * P1_LATENCY
      out(`| ${r.c} | ${r.variant} | **${ms(median(r.walls))}** (${r.walls.map(ms).join(', ')}) | ${floorMs} ms | ${r.cpu.toFixed(2)} + ${r.pgCpu.toFixed(2)} | ${r.calls} (${r.callsDetail}) | ${r.rows.ledger} + ${r.rows.workflows} | ${r.exact ? 'yes' : 'NO'} | ${ms(r.p5wall)} | ${r.p5calls} (${r.p5callsDetail}) | ${r.p5rows.ledger} + ${r.p5rows.workflows} | ${r.rss} |`)
    }
    out(`\n¹ (2 + ⌈${P1_WORKFLOWS}/concurrency⌉) × ${P1_LATENCY} ms: the ceiling call (the instance's first page), then the running list, then the workflows' list calls in waves. "instance 1st page" is the ceiling call (and, for the scan, the scan's own first page). Targets: P1 ≤ 0.3 s; P5 ≤ 1 call per workflow and 0 rows (the sync_logs row aside).`)
  }
  if (p2Rows.length > 0) {
    out(`\n### P2: POST /sync/all, ${p2Info}, ${P2_LATENCY} ms n8n latency\n`)
    out('| strategy | N8N_CONCURRENCY | checkout | wall | latency floor² | CPU s service + Postgres | n8n calls | ledger rows | workflows written | peak RSS MB (after boot) | exact | again, nothing new: wall / n8n calls / rows written |')
    out('|---|---|---|---|---|---|---|---|---|---|---|---|')
    const visible = p2Rows.length > 0 ? P2_NEW : 0
    for (const r of p2Rows) {
      const floorMs = r.strategy === 'scan'
        ? (2 + Math.ceil(visible / 250)) * P2_LATENCY
        : (2 + Math.ceil((P2_USERS * P2_WPU) / r.c)) * P2_LATENCY
      const re = r.re ? `${ms(r.re.wall)} / ${r.re.calls} (${r.re.callsDetail}) / ${r.re.ledger} + ${r.re.workflows}` : '-'
      out(`| ${r.strategy}${r.nodeArgs ? ` (node ${r.nodeArgs})` : ''} | ${r.c} | ${r.variant} | **${ms(r.wall)}** | ${ms(floorMs)} | ${r.cpu.toFixed(1)} + ${r.pgCpu.toFixed(1)} | ${r.calls} (${r.callsDetail}) | ${r.ledger} | ${r.workflowsWritten} | **${r.rss}** (${r.bootRss}) | ${r.exact ? 'yes' : `NO (${r.mismatches} workflows, status ${r.status})`} | ${re} |`)
    }
    out(`\n² scan: (2 + ⌈new executions/250⌉) × ${P2_LATENCY} ms (sequential cursor pages); per workflow: (2 + ⌈workflows/concurrency⌉) × ${P2_LATENCY} ms. Targets: ≤ 15 s, ≤ 200 MB. The old Edge Function's budget: 0.5 s per workflow = ${Math.round(P2_USERS * P2_WPU * 0.5)} s.`)
  }
  console.log(report.join('\n'))
} finally {
  await cleanup()
}
