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
// Quick run: BENCH_P2_USERS=100 BENCH_P2_EXECUTIONS=10000 BENCH_CONCURRENCY=8,32 npm run bench:sync
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { SignJWT } from 'jose'
import { PgDatabase } from '../src/db/pg-database.ts'
import { migrate } from '../src/db/migrate.ts'
import { peakRssMb } from './lib.ts'
import { SimClient } from './sim-n8n.ts'
import type { GenerateResult, SimStats, SimWorkflow, Truth } from './sim-n8n.ts'

// ---- settings ---------------------------------------------------------------------------------

function num (key: string, def: number): number {
  const v = process.env[key]
  if (v === undefined || v.trim() === '') return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${key} must be a non-negative number`)
  return n
}
function nums (key: string, def: string): number[] {
  return (process.env[key] ?? def).split(',').map((x) => Number(x.trim())).filter((n) => Number.isInteger(n) && n > 0)
}

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

const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const here = new URL('.', import.meta.url).pathname
const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef'
const CRON_SECRET = 'bench-cron-' + randomBytes(24).toString('hex')
const started = performance.now()

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
async function createDb (template?: string): Promise<string> {
  const name = `ws_bench_sync_${randomBytes(4).toString('hex')}`
  await withClient(adminUrl, (c) => c.query(`create database ${name}${template ? ` template ${template}` : ''}`))
  databases.add(name)
  return name
}
async function dropDb (name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`))
  databases.delete(name)
}
async function migratedDb (): Promise<string> {
  const name = await createDb()
  const db = new PgDatabase({ connectionString: dbUrl(name), max: 2 })
  await migrate(db)
  await db.close()
  return name
}

// ---- users and workflows ----------------------------------------------------------------------

interface BenchWf { id: string, n8nId: string }
interface BenchUser { id: string, tag: string, token: string, workflows: BenchWf[] }

let n8nCounter = 0
function n8nId (): string {
  return 'sim' + (++n8nCounter).toString(36).padStart(13, '0')
}

async function makeUsers (count: number, perUser: number, label: string): Promise<BenchUser[]> {
  const users: BenchUser[] = []
  for (let i = 0; i < count; i++) {
    const id = randomUUID()
    const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: `${label}${i}@example.com` })
      .setProtectedHeader({ alg: 'HS256' }).setSubject(id).setIssuedAt().setExpirationTime('2h')
      .sign(new TextEncoder().encode(JWT_SECRET))
    users.push({ id, tag: `[USR-${id.replace(/-/g, '').slice(0, 8)}]`, token, workflows: Array.from({ length: perUser }, () => ({ id: '', n8nId: n8nId() })) })
  }
  return users
}

const NODES = JSON.stringify([{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'p', httpMethod: 'POST' } }])

/** Rows as a deploy leaves them (status deployed, n8n id set); `floor`: as a completed sync leaves it. */
async function seed (dbName: string, users: BenchUser[], floor: number | null): Promise<void> {
  const u: string[] = []; const n: string[] = []; const x: string[] = []
  for (const user of users) {
    user.workflows.forEach((w, j) => { u.push(user.id); n.push(`flow ${j}`); x.push(w.n8nId) })
  }
  await withClient(dbUrl(dbName), async (c) => {
    for (let i = 0; i < u.length; i += 5000) {
      const res = await c.query<{ id: string, n8n_workflow_id: string }>(
        `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id, nodes, execution_floor_id)
         select t.u, t.n, 'deployed', false, t.x, $4::jsonb, $5::bigint from unnest($1::uuid[], $2::text[], $3::text[]) as t(u, n, x)
         returning id, n8n_workflow_id`,
        [u.slice(i, i + 5000), n.slice(i, i + 5000), x.slice(i, i + 5000), NODES, floor])
      const byN8n = new Map(res.rows.map((r) => [r.n8n_workflow_id, r.id]))
      for (const user of users) for (const w of user.workflows) { const id = byN8n.get(w.n8nId); if (id) w.id = id }
    }
    // Statistics for the seeded rows only: analysing the still-empty ledger would record it as empty,
    // and plpgsql's cached generic plans would then seq-scan it as it grows (see the report).
    await c.query('analyze mvp_workflows')
  })
}

function simWorkflows (users: BenchUser[]): SimWorkflow[] {
  return users.flatMap((u) => u.workflows.map((w, j) => ({ id: w.n8nId, name: `${u.tag} flow ${j}`, active: false, rowId: w.id, userId: u.id })))
}

// ---- the service ------------------------------------------------------------------------------

interface Service { child: ChildProcess, origin: string, stop(): Promise<void> }
let profileNo = 0

async function startService (dbName: string, concurrency: number, strategy = '', nodeArgs = ''): Promise<Service> {
  const execArgv = ['--disable-warning=ExperimentalWarning', ...nodeArgs.split(' ').filter(Boolean)]
  if (CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=sync-${++profileNo}-${strategy || 'default'}-c${concurrency}.cpuprofile`)
  if (process.env.BENCH_NODE_ARGS) execArgv.push(...process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean))
  const child = fork(`${here}servers/sync-app.ts`, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
    env: {
      ...process.env,
      BENCH_DATABASE_URL: dbUrl(dbName),
      BENCH_JWT_SECRET: JWT_SECRET,
      CRON_SECRET,
      N8N_API_URL: sim.baseUrl,
      N8N_CONCURRENCY: String(concurrency),
      BENCH_SYNC_ALL_STRATEGY: strategy
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
      if (child.connected) child.send('stop')
      else child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(t)
    }
  }
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
  const truth = await sim.request<Truth>({ op: 'truth', workflowIds: wfs.map((w) => w.n8nId) })
  const r = await c.query<{ id: string, n: string, ok: string, failed: string, ln: string, lok: string, lfailed: string }>(
    `select w.id, w.execution_count as n, w.successful_executions as ok, w.failed_executions as failed,
            coalesce(l.n, 0) as ln, coalesce(l.ok, 0) as lok, coalesce(l.failed, 0) as lfailed
       from mvp_workflows w
       left join (select workflow_id, count(*) filter (where count_category is not null) as n,
                         count(*) filter (where count_category = 'success') as ok,
                         count(*) filter (where count_category = 'failed') as failed
                    from workflow_executions where workflow_id = any($1::uuid[]) group by workflow_id) l on l.workflow_id = w.id
      where w.id = any($1::uuid[])`, [wfs.map((w) => w.id)])
  const byId = new Map(r.rows.map((x) => [x.id, x]))
  let mismatches = 0
  for (const w of wfs) {
    const t = truth[w.n8nId] ?? [0, 0, 0]
    const row = byId.get(w.id)
    const got = row ? [row.n, row.ok, row.failed, row.ln, row.lok, row.lfailed].map(Number) : []
    if (!row || got[0] !== t[0] || got[1] !== t[1] || got[2] !== t[2] || got[3] !== t[0] || got[4] !== t[1] || got[5] !== t[2]) mismatches++
  }
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
  for (const name of [...databases]) await dropDb(name).catch(() => {})
}
process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)) })

const report: string[] = []
const out = (line = ''): void => { report.push(line) }

try {
  console.error(`bench:sync — node ${process.version}, P1 ${P1_WORKFLOWS} wf × ${P1_EXECS} @ ${P1_LATENCY} ms, P2 ${P2_USERS}×${P2_WPU} wf, ${P2_NEW} new @ ${P2_LATENCY} ms, concurrency ${SWEEP.join('/')}, P2 scan ${P2_SCAN_SWEEP.join('/')}, per_workflow ${P2_PW_SWEEP.join('/')}, strategies ${STRATEGIES.join('/')}`)

  // P1 users first (so P2's instance scan never reaches their executions).
  const p1Users = new Map<number, BenchUser[]>()
  const warmUsers = new Map<number, BenchUser>()
  let p1Db = ''
  if (!SKIP_P1) {
    p1Db = await migratedDb()
    const all: BenchUser[] = []
    for (const c of SWEEP) {
      const [warm] = await makeUsers(1, 10, `warm${c}-`)
      const reps = await makeUsers(P1_REPS, P1_WORKFLOWS, `p1c${c}-`)
      warmUsers.set(c, warm as BenchUser)
      p1Users.set(c, reps)
      all.push(warm as BenchUser, ...reps)
    }
    await seed(p1Db, all, null)
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
  interface P1Row { c: number, walls: number[], calls: number, ingested: number, rows: { ledger: number, workflows: number }, exact: boolean, p5calls: number, p5callsDetail: string, p5rows: { ledger: number, workflows: number }, p5wall: number, rss: number, callsDetail: string }
  const p1Rows: P1Row[] = []
  if (!SKIP_P1) {
    await sim.request({ op: 'configure', latencyMs: P1_LATENCY })
    for (const c of SWEEP) {
      const svc = await startService(p1Db, c)
      try {
        await post(svc.origin, '/sync', (warmUsers.get(c) as BenchUser).token) // warm-up: JIT, pool, zod
        const row: P1Row = { c, walls: [], calls: 0, ingested: 0, rows: { ledger: 0, workflows: 0 }, exact: true, p5calls: 0, p5callsDetail: '', p5rows: { ledger: 0, workflows: 0 }, p5wall: 0, rss: 0, callsDetail: '' }
        await withClient(dbUrl(p1Db), async (db) => {
          for (const u of p1Users.get(c) ?? []) {
            const v0 = await rowVersions(db, u.id)
            await sim.request({ op: 'resetCounters' })
            const r1 = await post(svc.origin, '/sync', u.token)
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
        console.error(`P1 c=${c}: ${row.walls.map(ms).join(' / ')}; P5 ${row.p5calls} calls`)
      } finally {
        await svc.stop()
      }
    }
    await dropDb(p1Db)
  }

  // ---- P2 per strategy and concurrency
  interface P2Row { strategy: string, c: number, nodeArgs: string, bootRss: number, wall: number, engineMs: number, calls: number, callsDetail: string, ledger: number, workflowsWritten: number, ingested: number, rss: number, exact: boolean, mismatches: number, status: string, re?: { wall: number, calls: number, callsDetail: string, ledger: number, workflows: number } }
  const p2Rows: P2Row[] = []
  let p2Info = ''
  if (!SKIP_P2) {
    const users = await makeUsers(P2_USERS, P2_WPU, 'p2-')
    const wfs = users.flatMap((u) => u.workflows)
    const before = await sim.request<SimStats>({ op: 'stats' })
    // The template: every workflow synced once before these executions existed (its stop point is
    // the instance's newest id then, as a completed pass leaves it; no execution of it lies below).
    const template = await migratedDb()
    await seed(template, users, before.maxId)
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
      {
        const dbName = await createDb(template)
        const svc = await startService(dbName, c, strategy, nodeArgs)
        try {
          const warm = await fetch(`${svc.origin}/sync/logs?limit=1`, { headers: { authorization: `Bearer ${CRON_SECRET}` } })
          await warm.arrayBuffer()
          const bootRss = peakRssMb(svc.child.pid)
          await sim.request({ op: 'resetCounters' })
          const r = await post(svc.origin, '/sync/all', CRON_SECRET)
          const rss = peakRssMb(svc.child.pid)
          const calls = await sim.request<Record<string, number>>({ op: 'counters' })
          const row: P2Row = { strategy, c, nodeArgs, bootRss, wall: r.ms, engineMs: r.body.duration_ms, calls: sumCalls(calls), callsDetail: fmtCalls(calls), ledger: 0, workflowsWritten: 0, ingested: r.body.executions_ingested, rss, exact: false, mismatches: 0, status: r.body.status }
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
              const st = await db.query(`select relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_live_tup, n_dead_tup from pg_stat_user_tables where relname in ('workflow_executions', 'mvp_workflows', 'workflow_events', 'workflow_scan_floors')`)
              console.error(JSON.stringify(st.rows))
            })
          }
          p2Rows.push(row)
          console.error(`P2 ${strategy} c=${c}${nodeArgs ? ` [${nodeArgs}]` : ''}: ${ms(row.wall)}, ${row.calls} calls, ${row.rss} MB, exact ${row.exact}${row.re ? `; again: ${ms(row.re.wall)}, ${row.re.calls} calls` : ''}`)
        } finally {
          await svc.stop()
          await dropDb(dbName)
        }
      }
    }
    await dropDb(template)
  }

  // ---- report
  out(`\n## bench:sync — node ${process.version}, ${new Date().toISOString()}, whole run ${ms(performance.now() - started)}\n`)
  out('### Bare numbers of this machine (same run)\n')
  out('| measurement | result |')
  out('|---|---|')
  for (const [k, v] of base) out(`| ${k} | ${v} |`)
  if (p1Rows.length > 0) {
    out(`\n### P1 and P5: POST /sync, ${P1_WORKFLOWS} workflows, ${P1_EXECS} new executions each, ${P1_LATENCY} ms n8n latency (${P1_REPS} users per row, median)\n`)
    out('| N8N_CONCURRENCY | P1 wall (median; all) | latency floor¹ | n8n calls | rows written (ledger + workflows) | exact | P5 wall | P5 n8n calls | P5 rows written | peak RSS MB |')
    out('|---|---|---|---|---|---|---|---|---|---|')
    for (const r of p1Rows) {
      const floorMs = (2 + Math.ceil(P1_WORKFLOWS / r.c)) * P1_LATENCY
      out(`| ${r.c} | **${ms(median(r.walls))}** (${r.walls.map(ms).join(', ')}) | ${floorMs} ms | ${r.calls} (${r.callsDetail}) | ${r.rows.ledger} + ${r.rows.workflows} | ${r.exact ? 'yes' : 'NO'} | ${ms(r.p5wall)} | ${r.p5calls} (${r.p5callsDetail}) | ${r.p5rows.ledger} + ${r.p5rows.workflows} | ${r.rss} |`)
    }
    out(`\n¹ (2 + ⌈${P1_WORKFLOWS}/concurrency⌉) × ${P1_LATENCY} ms: the ceiling call (the instance's first page), then the running list, then the workflows' list calls in waves. "instance 1st page" is the ceiling call (and, for the scan, the scan's own first page). Targets: P1 ≤ 0.3 s; P5 ≤ 1 call per workflow and 0 rows (the sync_logs row aside).`)
  }
  if (p2Rows.length > 0) {
    out(`\n### P2: POST /sync/all, ${p2Info}, ${P2_LATENCY} ms n8n latency\n`)
    out('| strategy | N8N_CONCURRENCY | wall | latency floor² | n8n calls | ledger rows | workflows written | peak RSS MB (after boot) | exact | again, nothing new: wall / n8n calls / rows written |')
    out('|---|---|---|---|---|---|---|---|---|---|')
    const visible = p2Rows.length > 0 ? P2_NEW : 0
    for (const r of p2Rows) {
      const floorMs = r.strategy === 'scan'
        ? (2 + Math.ceil(visible / 250)) * P2_LATENCY
        : (2 + Math.ceil((P2_USERS * P2_WPU) / r.c)) * P2_LATENCY
      const re = r.re ? `${ms(r.re.wall)} / ${r.re.calls} (${r.re.callsDetail}) / ${r.re.ledger} + ${r.re.workflows}` : '-'
      out(`| ${r.strategy}${r.nodeArgs ? ` (node ${r.nodeArgs})` : ''} | ${r.c} | **${ms(r.wall)}** | ${ms(floorMs)} | ${r.calls} (${r.callsDetail}) | ${r.ledger} | ${r.workflowsWritten} | **${r.rss}** (${r.bootRss}) | ${r.exact ? 'yes' : `NO (${r.mismatches} workflows, status ${r.status})`} | ${re} |`)
    }
    out(`\n² scan: (2 + ⌈new executions/250⌉) × ${P2_LATENCY} ms (sequential cursor pages); per workflow: (2 + ⌈workflows/concurrency⌉) × ${P2_LATENCY} ms. Targets: ≤ 15 s, ≤ 200 MB. The old Edge Function's budget: 0.5 s per workflow = ${Math.round(P2_USERS * P2_WPU * 0.5)} s.`)
  }
  console.log(report.join('\n'))
} finally {
  await cleanup()
}
