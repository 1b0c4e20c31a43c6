// npm run chaos: the service under faults, each scenario with its own verdict, one table at the end.
//
// Everything runs on things of its own: a Postgres cluster initdb'ed in a temporary folder on a
// free port (test/helpers/private-cluster.ts; the shared 5432 server is never touched), the
// simulated n8n (bench/sim-n8n.ts, in fault mode where a scenario says so), a redis-server on a
// free port (scenario 5), and the real service in its own process (bench/servers/chaos-app.ts,
// production mode, default timeouts), so that it can be SIGKILLed and its RSS read.
//
//   1 Postgres restarts under load   50 connections of mixed reads/writes + 20 /events streams;
//                                    pg_ctl stop -m fast, 5 s, start
//   2 n8n flaps during /sync/all     1,000 workflows, 20 % of n8n calls fail (500, 429 +
//                                    Retry-After, timeouts, resets); then a healthy sync
//   3 SIGKILL at random moments      20 runs over deploys, syncs and cleanup; restart, one sync
//   4 soak                           CHAOS_SOAK_MINUTES (default 10) of steady mixed traffic with
//                                    200 open streams
//   5 Redis goes away                the rate-limit store is killed and started again
//
// CHAOS_ONLY=1,3 runs a subset (development). Exit code 1 when a verdict fails.
import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { SignJWT } from 'jose'
import { Redis } from 'ioredis'
import { PgDatabase } from '../src/db/pg-database.ts'
import { migrate } from '../src/db/migrate.ts'
import { createPrivateCluster, freePort } from '../test/helpers/private-cluster.ts'
import type { PrivateCluster } from '../test/helpers/private-cluster.ts'
import { openSse, waitFor } from '../test/helpers/sse.ts'
import type { SseEvent, SseStream } from '../test/helpers/sse.ts'
import { countsAndTruth } from './lib.ts'
import { SimClient } from './sim-n8n.ts'
import type { SimWorkflow, SimWorkflowDump } from './sim-n8n.ts'

const here = new URL('.', import.meta.url).pathname
const JWT_SECRET = randomBytes(32).toString('hex')
const CRON_SECRET = randomBytes(32).toString('hex')
const cron = { authorization: `Bearer ${CRON_SECRET}`, 'content-type': 'application/json' }
const SOAK_MINUTES = Number(process.env.CHAOS_SOAK_MINUTES ?? 10)
const ONLY = process.env.CHAOS_ONLY ? new Set(process.env.CHAOS_ONLY.split(',').map((s) => s.trim())) : null
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const now = (): number => performance.now()
const out = (s: string): void => { process.stdout.write(s + '\n') }

// ---- the service process ------------------------------------------------------------------------

interface AppProc {
  child: ChildProcess
  base: string
  pid: number
  /** Set when the process ended without being asked to. */
  crashed: string | null
  kill(): Promise<void>
  stop(): Promise<void>
}

let cluster: PrivateCluster
let sim: SimClient
let dbUrl = ''

async function startApp (env: Record<string, string> = {}): Promise<AppProc> {
  const child = fork(`${here}servers/chaos-app.ts`, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--disable-warning=ExperimentalWarning', '--max-semi-space-size=4', '--max-old-space-size=256'],
    env: { ...process.env, CHAOS_DATABASE_URL: dbUrl, CHAOS_JWT_SECRET: JWT_SECRET, CRON_SECRET, N8N_API_URL: sim.baseUrl, ...env }
  })
  const msg = await new Promise<{ port: number, pid: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number, pid: number }))
    child.once('exit', (code, signal) => reject(new Error(`chaos-app exited at boot (${code ?? signal})`)))
  })
  let expected = false
  const proc: AppProc = {
    child,
    base: `http://127.0.0.1:${msg.port}`,
    pid: msg.pid,
    crashed: null,
    async kill () {
      expected = true
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
    async stop () {
      expected = true
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send('stop')
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(t)
    }
  }
  child.on('exit', (code, signal) => { if (!expected) proc.crashed = `exited (${code ?? signal})` })
  return proc
}

/** CPU time (user + system) a process used so far, in ms (Linux /proc). */
function cpuMs (pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return NaN
  }
}

function rssMb (pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

// ---- users and HTTP -----------------------------------------------------------------------------

interface User { id: string, tag: string, auth: Record<string, string>, json: Record<string, string>, workflows: string[] }

async function makeUser (): Promise<User> {
  const id = randomUUID()
  const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: `${id.slice(0, 8)}@example.com` })
    .setProtectedHeader({ alg: 'HS256' }).setSubject(id).setIssuedAt().setExpirationTime('3h')
    .sign(new TextEncoder().encode(JWT_SECRET))
  const auth = { authorization: `Bearer ${token}` }
  return { id, tag: `[USR-${id.replace(/-/g, '').slice(0, 8)}]`, auth, json: { ...auth, 'content-type': 'application/json' }, workflows: [] }
}

interface Sample { op: string, t0: number, t1: number, status: number, code: string | null }
interface Answer { status: number, code: string | null, body: Record<string, unknown> | null, ms: number }

/** One request; status 0 = network error, -1 = no answer within timeoutMs (a hang). */
async function call (base: string, method: string, path: string, headers: Record<string, string>, body?: unknown, timeoutMs = 10_000): Promise<Answer> {
  const t0 = now()
  try {
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(timeoutMs) }
    if (body !== undefined) init.body = JSON.stringify(body)
    const res = await fetch(base + path, init)
    const text = await res.text()
    let parsed: Record<string, unknown> | null = null
    try { parsed = text ? JSON.parse(text) as Record<string, unknown> : null } catch { parsed = null }
    return { status: res.status, code: typeof parsed?.code === 'string' ? parsed.code : null, body: parsed, ms: now() - t0 }
  } catch (err) {
    const timeout = (err as Error).name === 'TimeoutError'
    return { status: timeout ? -1 : 0, code: timeout ? 'hang' : 'network', body: null, ms: now() - t0 }
  }
}

function statusCounts (samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples) {
    if (s.status >= 200 && s.status < 300) continue
    const k = s.status === -1 ? 'hang' : s.status === 0 ? 'network' : String(s.status)
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

class Recorder {
  readonly samples: Sample[] = []
  add (op: string, t0: number, a: Answer): void {
    this.samples.push({ op, t0, t1: t0 + a.ms, status: a.status, code: a.code })
  }

  byStatus (filter: (s: Sample) => boolean = () => true): Record<string, number> {
    return statusCounts(this.samples.filter(filter))
  }
}

function pct (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] as number
}
const fmtMs = (x: number): string => Number.isNaN(x) ? 'n/a' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`
const fmtStatus = (m: Record<string, number>): string => Object.keys(m).length === 0 ? 'none' : Object.entries(m).map(([k, v]) => `${k}×${v}`).join(', ')

/** An /events client as a front end runs it: reconnects with Last-Event-ID whenever the stream ends. */
class LiveStream {
  lastId: string | undefined
  readonly inserts = new Set<string>()
  readyAt = 0
  resets = 0
  overflows = 0
  connects = 0
  refused = 0
  private current: SseStream | null = null
  private closed = false
  readonly loop: Promise<void>

  private readonly base: () => string
  readonly user: User

  constructor (base: () => string, user: User) {
    this.base = base
    this.user = user
    this.loop = this.run()
  }

  private onEvent (e: SseEvent): void {
    if (e.id) this.lastId = e.id
    if (e.event === 'ready' && this.readyAt === 0) this.readyAt = now()
    if (e.event === 'reset') { this.resets++; if (this.readyAt === 0) this.readyAt = now() }
    if (e.event === 'overflow') this.overflows++
    if (e.event === 'workflow.insert') {
      try { this.inserts.add((JSON.parse(e.data) as { id: string }).id) } catch { /* not JSON: counted as missing later */ }
    }
  }

  private async run (): Promise<void> {
    while (!this.closed) {
      try {
        const s = await openSse(this.base(), this.user.auth, this.lastId, (e) => { this.onEvent(e) })
        if (s.status !== 200) {
          this.refused++
          s.close()
          await sleep(500 + Math.random() * 500)
          continue
        }
        this.connects++
        this.current = s
        await s.done
      } catch {
        // the service is not reachable: try again
      }
      this.current = null
      if (!this.closed) await sleep(500 + Math.random() * 500)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    this.current?.close()
    await this.loop
  }
}

// ---- database helpers ---------------------------------------------------------------------------

async function withDb<T> (fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl })
  await c.connect()
  try { return await fn(c) } finally { await c.end() }
}

async function missingRows (ids: string[]): Promise<number> {
  if (ids.length === 0) return 0
  return withDb(async (c) => {
    const r = await c.query<{ id: string }>('select id from mvp_workflows where id = any($1::uuid[])', [ids])
    return ids.length - r.rowCount!
  })
}

interface SeededWf { id: string, n8nId: string }

/** Counts and ledger equal the simulator's truth (execution_count, successful, failed). */
async function mismatches (wfs: SeededWf[], ledger = true): Promise<{ ids: Set<string>, over: number, example: string }> {
  const { truth, byId } = await withDb((c) => countsAndTruth(c, sim, wfs))
  const ids = new Set<string>()
  let over = 0
  let example = ''
  for (const w of wfs) {
    const t = truth[w.n8nId] ?? [0, 0, 0]
    const row = byId.get(w.id)
    const got = row ? [row.n, row.ok, row.failed, row.ln, row.lok, row.lfailed].map(Number) : [NaN]
    if (!row || got[0] !== t[0] || got[1] !== t[1] || got[2] !== t[2] || (ledger && (got[3] !== t[0] || got[4] !== t[1] || got[5] !== t[2]))) {
      ids.add(w.id)
      if (!example) example = `${w.id}: truth ${JSON.stringify(t)}, row+ledger ${JSON.stringify(got)}`
    }
    if (row && (got[0]! > t[0] || got[1]! > t[1] || got[2]! > t[2] || (ledger && got[3]! > t[0]))) over++
  }
  if (example) out(`  count mismatch example: ${example}`)
  return { ids, over, example }
}

// ---- results ------------------------------------------------------------------------------------

interface Result {
  scenario: string
  requests: number
  errors: string
  lost: number
  recovery: string
  pass: boolean
  checks: Array<[boolean, string]>
}

const results: Result[] = []

function verdict (scenario: string, fields: Omit<Result, 'scenario' | 'pass'>): Result {
  const pass = fields.checks.every(([ok]) => ok) && fields.lost === 0
  const r = { scenario, pass, ...fields }
  out(`\n### ${scenario}: ${pass ? 'PASS' : 'FAIL'}`)
  for (const [ok, what] of fields.checks) out(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`)
  results.push(r)
  return r
}

const WEBHOOK = [{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'p', httpMethod: 'POST' } }]

// ---- 1: Postgres restarts under load --------------------------------------------------------------

async function scenarioPostgresRestart (): Promise<void> {
  out('\n## 1. Postgres restarts under load (50 connections, 20 streams; stop -m fast, 5 s, start)')
  const app = await startApp()
  const users = await Promise.all(Array.from({ length: 10 }, makeUser))
  for (const u of users) {
    const a = await call(app.base, 'POST', '/workflows', u.json, { name: 'seed', nodes: WEBHOOK })
    if (a.status !== 201) throw new Error(`seed write answered ${a.status}`)
    u.workflows.push(String(a.body!.id))
  }
  const streams = users.flatMap((u) => [new LiveStream(() => app.base, u), new LiveStream(() => app.base, u)])
  await waitFor(() => streams.every((s) => s.readyAt > 0), 20_000, 'every stream ready')

  const rec = new Recorder()
  const created: Array<{ id: string, user: User, at: number }> = []
  const ready: Array<{ t: number, status: number }> = []
  const load = { running: true } // flipped when the scenario ends; read by the workers
  // The first seconds warm the service's pools up (a cold pool opens 20 connections at once, which
  // takes seconds on a loaded machine): recorded apart, reported, not judged.
  const warm = new Recorder()
  let target = warm
  const worker = async (): Promise<void> => {
    while (load.running) {
      const u = users[Math.floor(Math.random() * users.length)]!
      const r = Math.random()
      const t0 = now()
      const rec = target
      if (r < 0.5) {
        rec.add('list', t0, await call(app.base, 'GET', '/workflows?limit=20', u.auth))
      } else if (r < 0.7) {
        rec.add('get', t0, await call(app.base, 'GET', `/workflows/${u.workflows[Math.floor(Math.random() * u.workflows.length)]}`, u.auth))
      } else if (r < 0.95) {
        const a = await call(app.base, 'POST', '/workflows', u.json, { name: `w ${Math.random().toString(36).slice(2, 8)}`, nodes: WEBHOOK })
        rec.add('create', t0, a)
        if (a.status === 201 && a.body?.id) { created.push({ id: String(a.body.id), user: u, at: t0 + a.ms }); u.workflows.push(String(a.body.id)) }
      } else {
        rec.add('patch', t0, await call(app.base, 'PATCH', `/workflows/${u.workflows[0]}`, u.json, { description: `d ${Date.now()}` }))
      }
    }
  }
  const poller = (async () => {
    while (load.running) {
      const t = now()
      const a = await call(app.base, 'GET', '/ready', {}, undefined, 5000)
      ready.push({ t, status: a.status })
      await sleep(200)
    }
  })()
  const workers = Array.from({ length: 50 }, worker)
  await sleep(3000)
  target = rec
  await sleep(5000)
  const tStop = now()
  await cluster.stop('fast')
  const tDown = now()
  // the pool's gauges while the database is down (/metrics reads them without the database): a
  // pool whose slots are all held and has waiters would explain requests that wait instead of 503
  const poolDown: string[] = []
  for (let i = 0; i < 4; i++) {
    await sleep(1250)
    const m = await fetch(`${app.base}/metrics`, { headers: { authorization: `Bearer ${CRON_SECRET}` }, signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => '')
    poolDown.push(`${fmtMs(now() - tDown)}: ${[...m.matchAll(/db_pool_(\w+) (\d+)/g)].map((x) => `${x[1]}=${x[2]}`).join(' ') || 'n/a'}`)
  }
  await sleep(Math.max(0, 5000 - (now() - tDown)))
  const tStart = now()
  await cluster.start()
  const tUp = now()
  await sleep(10_000)
  load.running = false
  await Promise.all([...workers, poller])

  // every stream user writes once more: each of its streams must receive it (or have been told to reload)
  const finals: Array<{ id: string, user: User, at: number }> = []
  for (const u of users) {
    const a = await call(app.base, 'POST', '/workflows', u.json, { name: 'after', nodes: WEBHOOK })
    if (a.status === 201) finals.push({ id: String(a.body!.id), user: u, at: now() })
  }
  const told = (s: LiveStream): boolean => s.resets > 0 || s.overflows > 0
  await waitFor(() => streams.every((s) => told(s) || finals.filter((f) => f.user.id === s.user.id).every((f) => s.inserts.has(f.id))), 30_000, 'streams received the writes made after the restart').catch(() => {})
  let missingEvents = 0
  let replayChecked = 0
  for (const s of streams) {
    const u = s.user
    if (told(s)) continue
    for (const c of [...created, ...finals]) {
      if (c.user.id !== u.id || c.at < s.readyAt) continue
      replayChecked++
      if (!s.inserts.has(c.id)) missingEvents++
    }
  }
  const streamStats = { connects: streams.reduce((a, s) => a + s.connects, 0), refused: streams.reduce((a, s) => a + s.refused, 0), resets: streams.reduce((a, s) => a + s.resets, 0), overflows: streams.reduce((a, s) => a + s.overflows, 0) }
  await Promise.all(streams.map((s) => s.close()))

  const lost = await missingRows(created.map((c) => c.id))
  const down = rec.samples.filter((s) => s.t0 >= tDown && s.t1 <= tStart)
  const downBad = down.filter((s) => !(s.status === 503 && s.code === 'database_unavailable'))
  const downMax = Math.max(0, ...down.map((s) => s.t1 - s.t0))
  // what any request (including those sent before the stop) spent waiting while the DB was down
  const waitedDown = (s: Sample): number => Math.min(s.t1, tStart) - Math.max(s.t0, tDown)
  const longestDownWait = rec.samples.reduce<Sample | null>((a, s) => (a === null || waitedDown(s) > waitedDown(a) ? s : a), null)
  const downWaitMax = longestDownWait ? Math.max(0, waitedDown(longestDownWait)) : 0
  const firstOk = Math.min(...rec.samples.filter((s) => s.t0 >= tUp && s.status >= 200 && s.status < 300).map((s) => s.t1))
  const recovery = firstOk - tUp
  const readyDown = ready.filter((r) => r.t >= tDown && r.t <= tStart)
  const s500 = rec.samples.filter((s) => s.status >= 500 && s.status !== 503).length
  const hangs = rec.samples.filter((s) => s.status === -1 || s.status === 0).length
  const phase = (t: number): string => {
    const name = t < tStop ? 'before the stop' : t < tDown ? 'while stopping' : t < tStart ? 'while down' : t < tUp ? 'while starting' : 'after the start'
    return `${name} (${fmtMs(t - tStop)} from the stop)`
  }
  const okBefore = rec.samples.filter((s) => s.t1 < tStop && s.status >= 200 && s.status < 300).length
  const okAfter = rec.samples.filter((s) => s.t0 >= tUp && s.status >= 200 && s.status < 300).length
  const warmSlow = Math.max(0, ...warm.samples.map((s) => s.t1 - s.t0))
  out(`  warm-up (3 s, not judged): ${warm.samples.length} requests, ${fmtStatus(warm.byStatus())}, slowest ${fmtMs(warmSlow)}`)
  out(`  requests ${rec.samples.length} (2xx before the stop ${okBefore}, after the start ${okAfter}); while down ${down.length}, max ${fmtMs(downMax)}, p99 ${fmtMs(pct(down.map((s) => s.t1 - s.t0), 99))}`)
  out(`  pg stop took ${fmtMs(tDown - tStop)}, start ${fmtMs(tUp - tStart)}; first 2xx ${fmtMs(recovery)} after Postgres accepted connections`)
  out(`  pool while down: ${poolDown.join('; ')}`)
  out(`  timeline from the stop: down at ${fmtMs(tDown - tStop)}, start at ${fmtMs(tStart - tStop)}, up at ${fmtMs(tUp - tStop)}`)
  for (const h of rec.samples.filter((x) => x.status <= 0 || (x.status >= 500 && x.status !== 503)).slice(0, 5)) {
    out(`  unanswered/5xx: ${h.op} ${h.status} ${h.code ?? ''} started ${phase(h.t0)}, took ${fmtMs(h.t1 - h.t0)}`)
  }
  // the slowest requests, with the phase they started and ended in: what waits while the DB is down
  for (const h of [...rec.samples].sort((a, b) => (b.t1 - b.t0) - (a.t1 - a.t0)).slice(0, 8)) {
    out(`  slow: ${h.op} ${h.status} ${h.code ?? ''} took ${fmtMs(h.t1 - h.t0)}, started ${phase(h.t0)}, ended ${phase(h.t1)}`)
  }
  out(`  writes accepted ${created.length}, missing afterwards ${lost}; streams: ${JSON.stringify(streamStats)}, events checked ${replayChecked}, missing ${missingEvents}`)
  verdict('1 Postgres restart under load', {
    requests: rec.samples.length,
    errors: fmtStatus(rec.byStatus()),
    lost: lost + missingEvents,
    recovery: fmtMs(recovery),
    checks: [
      [app.crashed === null, `the process stayed up (${app.crashed ?? 'alive'})`],
      [down.length > 0 && downBad.length === 0, `while down: ${down.length} requests, all 503 database_unavailable (${downBad.length} other: ${fmtStatus(statusCounts(downBad))})`],
      [downMax < 3000, `while down: slowest answer ${fmtMs(downMax)} (< 3 s)`],
      [downWaitMax < 3000, `no request waited more than 3 s while the DB was down, those sent before the stop included (longest ${fmtMs(downWaitMax)}${longestDownWait && downWaitMax >= 3000 ? `: ${longestDownWait.op} ${longestDownWait.status}` : ''})`],
      [s500 === 0 && hangs === 0, `no 500 and no hang anywhere (${s500} 5xx other than 503, ${hangs} unanswered)`],
      [readyDown.length > 0 && readyDown.every((r) => r.status === 503), `/ready said 503 while down (${readyDown.filter((r) => r.status === 503).length}/${readyDown.length} polls)`],
      [Number.isFinite(recovery) && recovery < 10_000 && okAfter > 0, `serves again without a restart, ${fmtMs(recovery)} after Postgres is back (< 10 s)`],
      [missingEvents === 0 && replayChecked > 0, `streams reconnected and replayed: ${replayChecked} writes checked against the streams, ${missingEvents} missing (resets ${streamStats.resets}, overflows ${streamStats.overflows})`],
      [lost === 0 && created.length > 0, `every 2xx write is in the database (${created.length} accepted, ${lost} missing)`]
    ]
  })
  await app.stop()
}

// ---- 2: n8n flaps during /sync/all --------------------------------------------------------------

const seeded: SeededWf[] = []
let seedUsers: User[] = []

async function seedSyncWorkflows (): Promise<void> {
  seedUsers = await Promise.all(Array.from({ length: 100 }, makeUser))
  const u: string[] = []; const n: string[] = []; const x: string[] = []
  const sims: SimWorkflow[] = []
  let k = 0
  for (const user of seedUsers) {
    for (let j = 0; j < 10; j++) {
      const n8nId = 'seed' + (++k).toString(36).padStart(8, '0')
      u.push(user.id); n.push(`flow ${j}`); x.push(n8nId)
      sims.push({ id: n8nId, name: `${user.tag} flow ${j}`, active: false, userId: user.id })
    }
  }
  const rows = await withDb((c) => c.query<{ id: string, n8n_workflow_id: string }>(
    `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id, nodes)
     select t.u, t.n, 'deployed', false, t.x, $4::jsonb from unnest($1::uuid[], $2::text[], $3::text[]) as t(u, n, x)
     returning id, n8n_workflow_id`, [u, n, x, JSON.stringify(WEBHOOK)]))
  for (const r of rows.rows) seeded.push({ id: r.id, n8nId: r.n8n_workflow_id })
  // each n8n workflow carries its row's marker, as a deploy leaves it (the service acts on no other)
  const rowOf = new Map(rows.rows.map((r) => [r.n8n_workflow_id, r.id]))
  const userOf = new Map(x.map((id, i) => [id, u[i]!]))
  for (const w of sims) { w.rowId = rowOf.get(w.id)!; w.userId = userOf.get(w.id)! }
  await sim.request({ op: 'addWorkflows', workflows: sims })
}

interface FlappingSync {
  answer: Awaited<ReturnType<typeof call>>
  n8nCalls: number
  injected: Record<string, number>
  after: Awaited<ReturnType<typeof mismatches>>
  errors: Array<{ workflow_id: string, code: string, message: string }>
  unnamed: string[]
  reasons: Set<string>
}

/** New executions in n8n, then one /sync/all while `rate` of n8n's calls fail. */
async function flappingSync (app: { base: string }, label: string, rate: number, seed: number): Promise<FlappingSync> {
  await sim.request({ op: 'generate', spec: { workflowIds: seeded.map((w) => w.n8nId), perWorkflow: 20, seed } })
  await sim.request({ op: 'resetCounters' })
  await sim.request({ op: 'faults', rate })
  const answer = await call(app.base, 'POST', '/sync/all', cron, {}, 300_000)
  await sim.request({ op: 'faults', rate: 0 })
  const faults = await sim.request<Record<string, number>>({ op: 'counters' })
  const n8nCalls = Object.entries(faults).filter(([k]) => !k.includes('(total)')).reduce((a, [, v]) => a + v, 0)
  const injected = Object.fromEntries(Object.entries(faults).filter(([k]) => k.endsWith('(total)')).map(([k, v]) => [k.replace(/^fault | \(total\)$/g, ''), v]))
  const after = await mismatches(seeded)
  const errors = (answer.body?.errors ?? []) as FlappingSync['errors']
  const named = new Set(errors.map((e) => e.workflow_id))
  const unnamed = [...after.ids].filter((id) => !named.has(id))
  const reasons = new Set(errors.map((e) => e.code))
  out(`  ${label}: HTTP ${answer.status} ${String(answer.body?.status)} in ${fmtMs(answer.ms)}; synced ${String(answer.body?.workflows_synced)}, failed ${String(answer.body?.workflows_failed)}; n8n calls ${n8nCalls}, injected ${JSON.stringify(injected)}; reasons ${[...reasons].join(', ')}`)
  out(`  example: ${errors[0] ? JSON.stringify(errors[0]) : 'none'}`)
  return { answer, n8nCalls, injected, after, errors, unnamed, reasons }
}

/** The checks every flapping sync's answer must pass. */
function flappingChecks (label: string, f: FlappingSync): Array<[boolean, string]> {
  const injected = Object.values(f.injected).reduce((a, b) => a + b, 0)
  return [
    [injected > 0, `${label}: faults were injected (${fmtStatus(f.injected)})`],
    // The n8n client retries 429/5xx/timeouts/resets, so a flapping sync may absorb every fault:
    // `success` is then the truth only if every count is exact at once; otherwise it must say so.
    [f.answer.status === 200 && (f.answer.body?.status !== 'success' || f.after.ids.size === 0), `${label}: the answer is true: ${String(f.answer.body?.status)} with ${f.after.ids.size} counts inexact (success only when none is)`],
    // errors[] names at most 200 workflows (the sync log keeps the rest as errors_omitted); beyond
    // that, workflows_failed must count every unnamed one.
    [f.unnamed.length === 0 || (f.errors.length === 200 && Number(f.answer.body?.workflows_failed) - f.errors.length >= f.unnamed.length), `${label}: every workflow left inexact is named in errors[] or counted in workflows_failed beyond its 200 (${f.after.ids.size} inexact, ${f.unnamed.length} unnamed, ${String(f.answer.body?.workflows_failed)} failed)`],
    [f.errors.every((e) => e.workflow_id && e.code && e.message), `${label}: every error names a workflow and why (${f.errors.length} errors, codes ${[...f.reasons].join(', ')})`],
    [f.after.over === 0, `${label}: nothing counted above n8n's truth (${f.after.over})`]
  ]
}

async function scenarioN8nFlaps (): Promise<void> {
  out('\n## 2. n8n flaps during /sync/all (1,000 workflows, 20 % of n8n calls fail; then a storm at 70 %)')
  if (seeded.length === 0) await seedSyncWorkflows()
  const app = await startApp()
  const flap = await flappingSync(app, 'flapping sync (20 %)', 0.2, 11)
  // Retries absorb most faults at 20 %: a storm beyond them makes the answer name what failed.
  const storm = await flappingSync(app, 'storm sync (70 %)', 0.7, 12)
  const t0 = now()
  const second = await call(app.base, 'POST', '/sync/all', cron, {}, 300_000)
  const recovery = now() - t0
  const afterSecond = await mismatches(seeded)
  out(`  healthy sync: HTTP ${second.status} ${String(second.body?.status)} in ${fmtMs(second.ms)}; counts wrong afterwards ${afterSecond.ids.size}, counted above truth ${afterSecond.over}`)
  verdict('2 n8n flaps during /sync/all', {
    requests: flap.n8nCalls + storm.n8nCalls,
    errors: `n8n: ${fmtStatus(flap.injected)} (20 %); ${fmtStatus(storm.injected)} (70 %); service: ${flap.answer.status} ${String(flap.answer.body?.status)}, ${storm.answer.status} ${String(storm.answer.body?.status)}, ${second.status}`,
    lost: afterSecond.ids.size,
    recovery: fmtMs(recovery),
    checks: [
      [app.crashed === null, 'the process stayed up'],
      ...flappingChecks('20 %', flap),
      ...flappingChecks('70 %', storm),
      [storm.answer.body?.status !== 'success' && storm.errors.length > 0, `70 %: the storm's answer says workflows failed (${String(storm.answer.body?.status)}, ${storm.errors.length} named)`],
      [second.status === 200 && second.body?.status === 'success', `the next sync with a healthy n8n succeeds (${String(second.body?.status)})`],
      [afterSecond.ids.size === 0 && afterSecond.over === 0, `every count exact afterwards (${seeded.length} workflows, ${afterSecond.ids.size} wrong, ${afterSecond.over} counted twice)`]
    ]
  })
  await app.stop()
}

// ---- 3: SIGKILL at random moments ---------------------------------------------------------------

async function scenarioSigkill (): Promise<void> {
  if (seeded.length === 0) await seedSyncWorkflows()
  const u = await makeUser()
  const accepted = new Set<string>()
  const deleted = new Set<string>()
  // a DELETE cut by the kill may have happened: such rows are expected gone or present
  const deleteTried = new Set<string>()
  let requests = 0
  const statuses = new Recorder()
  let syncFailures = 0
  let notDeployed = 0
  let crashes = 0
  const kinds = ['deploy', 'sync', 'cleanup'] as const
  const RUNS = Number(process.env.CHAOS_KILL_RUNS ?? 20)
  out(`\n## 3. SIGKILL at random moments of deploys, syncs and cleanup (${RUNS} runs)`)
  const recoveries: number[] = []
  const deployRuns = Array.from({ length: RUNS }, (_, i) => kinds[i % 3]).filter((k) => k === 'deploy').length
  // each run's restarted process (after its sync) is the next run's victim
  let app = await startApp()
  // How long each kind of work takes here (its latest answer; the load of the machine changes it;
  // a span that saw no answer before its kill grows by half): a kill lands at a random moment
  // within 1.5× that span, so that some kills cut the work in the middle and others come after
  // answers, whose rows are then checked.
  const span = { create: 1000, sync: 3000, cleanup: 1000 }
  let killsMidRequest = 0
  let deployRunsWithAnswers = 0
  for (let run = 0; run < RUNS; run++) {
    const kind = kinds[run % 3]!
    const work: Array<Promise<void>> = []
    const victim = { killed: false } // set when this run's process is killed; read by the writers
    let inflight = 0
    let createsAnswered = 0
    const runStart = now()
    const track = async (op: string, fn: () => Promise<Answer>, onAnswer?: (a: Answer) => void): Promise<void> => {
      inflight++
      const t0 = now()
      const a = await fn()
      inflight--
      requests++; statuses.add(op, t0, a)
      if (a.status > 0) onAnswer?.(a)
    }
    if (kind === 'deploy') {
      // three writers create one workflow after another until the kill (every other one active)
      for (let w = 0; w < 3; w++) {
        work.push((async () => {
          for (let i = 0; !victim.killed; i++) {
            await track('create', () => call(app.base, 'POST', '/workflows', u.json, { name: `k${run}-${w}-${i}`, nodes: WEBHOOK, active: (w + i) % 2 === 0 }, 10_000), (a) => {
              if (a.status !== 201 || !a.body?.id) return
              accepted.add(String(a.body.id))
              createsAnswered++
              span.create = a.ms
            })
          }
        })())
      }
      const victims = [...accepted].filter((id) => !deleteTried.has(id)).slice(0, 2)
      for (const id of victims) {
        deleteTried.add(id)
        work.push(track('delete', () => call(app.base, 'DELETE', `/workflows/${id}`, u.auth, undefined, 10_000), (a) => {
          if (a.status === 204 || a.status === 200) deleted.add(id)
        }))
      }
      // the kill comes after this run's first accepted create, while the writers go on
      await waitFor(() => createsAnswered > 0 || app.crashed !== null, 60_000, `a create answered in run ${run}`).catch(() => {})
      if (createsAnswered > 0) deployRunsWithAnswers++
      await sleep(Math.random() * 1.5 * span.create)
    } else if (kind === 'sync') {
      await sim.request({ op: 'generate', spec: { workflowIds: seeded.slice(0, 300).map((w) => w.n8nId), perWorkflow: 5, seed: 100 + run } })
      work.push(track('sync', () => call(app.base, 'POST', '/sync/all', cron, {}, 60_000), (a) => { if (a.status === 200) span.sync = a.ms }))
      await sleep(Math.random() * 1.5 * span.sync)
    } else {
      // orphans: [USR-] workflows in n8n with no row
      await sim.request({ op: 'addWorkflows', workflows: Array.from({ length: 5 }, (_, i) => ({ id: `orph${run}x${i}`, name: `${u.tag} orphan ${i}`, active: false })) })
      work.push(track('cleanup', () => call(app.base, 'POST', '/cleanup', cron, {}, 60_000), (a) => { if (a.status === 200) span.cleanup = a.ms }))
      await sleep(Math.random() * 1.5 * span.cleanup)
    }
    if (app.crashed) crashes++
    victim.killed = true
    if (inflight > 0) killsMidRequest++
    await app.kill()
    await Promise.all(work)
    if (kind !== 'deploy' && !statuses.samples.some((x) => x.op === kind && x.status === 200 && x.t0 >= runStart)) span[kind] *= 1.5
    const t0 = now()
    const next = await startApp()
    const sync = await call(next.base, 'POST', '/sync/all', cron, {}, 120_000)
    requests++
    recoveries.push(now() - t0)
    if (sync.status !== 200 || sync.body?.status !== 'success') {
      syncFailures++
      out(`  run ${run} (${kind}): sync after restart ${sync.status} ${String(sync.body?.status)} ${JSON.stringify((sync.body?.errors as unknown[] | undefined)?.slice(0, 2) ?? sync.body)}`)
    }
    app = next
  }
  if (app.crashed) crashes++
  await app.stop()
  const dump = await sim.request<SimWorkflowDump[]>({ op: 'workflowsDump' })
  const perRow = new Map<string, number>()
  for (const w of dump) if (w.rowId) perRow.set(w.rowId, (perRow.get(w.rowId) ?? 0) + 1)
  const duplicates = [...perRow.values()].filter((n) => n > 1).length
  const live = [...accepted].filter((id) => !deleteTried.has(id))
  const lost = await missingRows(live)
  const rows = await withDb((c) => c.query<{ id: string, status: string, n8n_workflow_id: string | null }>('select id, status, n8n_workflow_id from mvp_workflows where user_id = $1', [u.id]))
  const inN8n = new Set(dump.map((w) => w.id))
  for (const r of rows.rows) if (r.status !== 'deployed' || !r.n8n_workflow_id || !inN8n.has(r.n8n_workflow_id)) notDeployed++
  const orphansLeft = dump.filter((w) => w.name.startsWith(u.tag) && (!w.rowId || !rows.rows.some((r) => r.id === w.rowId))).length
  // counts only: the cleanup runs purge ledger rows past EXECUTION_RETENTION_DAYS (the simulated
  // executions are dated 2025), which is retention, not loss
  const counts = await mismatches(seeded, false)
  out(`  kills: ${killsMidRequest}/${RUNS} cut a request in flight, the others came after the answers; kill spans create ${fmtMs(span.create)}, sync ${fmtMs(span.sync)}, cleanup ${fmtMs(span.cleanup)}`)
  out(`  requests ${requests}; rows accepted ${accepted.size}, deleted ${deleted.size} (tried ${deleteTried.size}), rows now ${rows.rowCount}; n8n workflows of the user ${dump.filter((w) => w.name.startsWith(u.tag)).length}; duplicates ${duplicates}; rows not deployed ${notDeployed}; orphans left ${orphansLeft}; restart + sync p50 ${fmtMs(pct(recoveries, 50))}, max ${fmtMs(Math.max(...recoveries))}`)
  verdict('3 SIGKILL at random moments', {
    requests,
    errors: fmtStatus(statuses.byStatus((s) => s.status !== 0)) + ` (+${statuses.samples.filter((s) => s.status === 0).length} cut by the kill)`,
    lost: lost + duplicates + counts.ids.size,
    recovery: `${fmtMs(pct(recoveries, 50))} (max ${fmtMs(Math.max(...recoveries))})`,
    checks: [
      [crashes === 0, `no crash other than the kills (${crashes})`],
      [syncFailures === 0, `the sync after each restart succeeded (${RUNS - syncFailures}/${RUNS})`],
      [duplicates === 0 && perRow.size > 0, `n8n holds no duplicate (${perRow.size} marked workflows, ${duplicates} rows with more than one)`],
      // a verdict over an empty list checks nothing: it fails
      [lost === 0 && live.length > 0, `no accepted row lost (${live.length} expected, ${lost} missing; ${deployRunsWithAnswers}/${deployRuns} deploy runs had creates answered before their kill)`],
      [counts.ids.size === 0, `counts equal n8n's truth (${seeded.length} workflows, ${counts.ids.size} wrong)`],
      [notDeployed === 0, `every row is deployed after the sync (${notDeployed} not)`]
    ]
  })
}

// ---- 4: soak ------------------------------------------------------------------------------------

async function scenarioSoak (): Promise<void> {
  const minutes = SOAK_MINUTES
  const rate = Number(process.env.CHAOS_SOAK_RPS ?? 10)
  out(`\n## 4. Soak: ${minutes} min of mixed traffic at ${rate} req/s with 200 open streams`)
  const app = await startApp()
  const users = await Promise.all(Array.from({ length: 40 }, makeUser))
  for (const u of users) {
    const a = await call(app.base, 'POST', '/workflows', u.json, { name: 'soak', nodes: WEBHOOK })
    if (a.status !== 201) throw new Error(`soak seed answered ${a.status}`)
    u.workflows.push(String(a.body!.id))
  }
  const streams = users.flatMap((u) => Array.from({ length: 5 }, () => new LiveStream(() => app.base, u)))
  await waitFor(() => streams.every((s) => s.readyAt > 0), 60_000, 'every soak stream ready')
  const rec = new Recorder()
  const rss: Array<{ t: number, mb: number }> = []
  const start = now()
  const end = start + minutes * 60_000
  const inflight = new Set<Promise<void>>()
  let tick = 0
  // CPU of the service and of this driver, per minute: tells a saturated service from a starved
  // machine (or a starved driver, whose late timers would look like slow answers)
  const cpu: Array<{ app: number, driver: number, lagP99: number, lagMax: number, load: number }> = []
  let cpuMark = { app: cpuMs(app.pid), driver: process.cpuUsage(), t: now() }
  const lag = monitorEventLoopDelay({ resolution: 20 })
  lag.enable()
  const sampleCpu = (): void => {
    const t = now()
    const d = process.cpuUsage(cpuMark.driver)
    const wall = (t - cpuMark.t) / 1000
    cpu.push({ app: (cpuMs(app.pid) - cpuMark.app) / 10 / wall, driver: (d.user + d.system) / 10_000 / wall, lagP99: lag.percentile(99) / 1e6, lagMax: lag.max / 1e6, load: loadavg()[0]! })
    lag.reset()
    cpuMark = { app: cpuMs(app.pid), driver: process.cpuUsage(), t }
  }
  const cpuTimer = setInterval(sampleCpu, 60_000)
  const rssTimer = setInterval(() => { rss.push({ t: now() - start, mb: rssMb(app.pid) }) }, 5000)
  // When answers get slow, what the service and the database are waiting on (at most every 15 s,
  // 6 times): the pool's gauges and the sessions of pg_stat_activity that are not idle.
  let lastSnapshot = 0
  let snapshots = 0
  const snapshot = async (why: string): Promise<void> => {
    if (snapshots >= 6 || now() - lastSnapshot < 15_000) return
    lastSnapshot = now(); snapshots++
    const m = await fetch(`${app.base}/metrics`, { headers: { authorization: `Bearer ${CRON_SECRET}` }, signal: AbortSignal.timeout(5000) }).then((r) => r.text(), () => '')
    const pool = [...m.matchAll(/db_pool_(\w+) (\d+)/g)].map((x) => `${x[1]}=${x[2]}`).join(' ')
    const act = await withDb((c) => c.query<{ application_name: string, state: string, wait: string, secs: string, q: string }>(
      `select application_name, state, coalesce(wait_event_type || ':' || wait_event, '') as wait,
              round(extract(epoch from now() - coalesce(query_start, backend_start))::numeric, 1)::text as secs, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as q
         from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'
        order by query_start limit 12`)).catch((err: Error) => ({ rows: [], rowCount: 0, error: err.message }))
    out(`  [${fmtMs(now() - start)}] ${why}: pool ${pool || 'n/a'}; ${act.rows.length} busy sessions`)
    for (const r of act.rows) out(`      ${r.application_name} ${r.state} ${r.wait} ${r.secs} s: ${r.q}`)
  }
  while (now() < end) {
    const due = start + (tick * 1000) / rate
    if (due > now()) await sleep(due - now())
    tick++
    const u = users[tick % users.length]!
    const r = Math.random()
    const t0 = now()
    const p = (async () => {
      if (tick % (rate * 60) === 0) rec.add('sync/all', t0, await call(app.base, 'POST', '/sync/all', cron, {}, 60_000))
      else if (r < 0.6) rec.add('list', t0, await call(app.base, 'GET', '/workflows?limit=20', u.auth))
      else if (r < 0.8) rec.add('get', t0, await call(app.base, 'GET', `/workflows/${u.workflows[0]}`, u.auth))
      else if (r < 0.97) rec.add('patch', t0, await call(app.base, 'PATCH', `/workflows/${u.workflows[0]}`, u.json, { description: `d ${tick}` }))
      else rec.add('sync', t0, await call(app.base, 'POST', '/sync', u.json, {}, 30_000))
    })()
    inflight.add(p)
    void p.finally(() => {
      inflight.delete(p)
      const last = rec.samples.at(-1)
      if (last && last.t1 - last.t0 > 3000) void snapshot(`${last.op} took ${fmtMs(last.t1 - last.t0)}, ${inflight.size} in flight`)
    })
  }
  await Promise.all(inflight)
  clearInterval(rssTimer)
  clearInterval(cpuTimer)
  if (now() - cpuMark.t > 10_000) sampleCpu()
  lag.disable()
  const streamsAlive = streams.filter((s) => s.connects >= 1).length
  const streamReconnects = streams.reduce((a, s) => a + Math.max(0, s.connects - 1), 0)
  await Promise.all(streams.map((s) => s.close()))
  const perMinute: Array<{ n: number, p99: number }> = []
  for (let m = 0; m < Math.ceil(minutes); m++) {
    const xs = rec.samples.filter((s) => s.t0 - start >= m * 60_000 && s.t0 - start < (m + 1) * 60_000 && s.op !== 'sync/all').map((s) => s.t1 - s.t0)
    perMinute.push({ n: xs.length, p99: pct(xs, 99) })
  }
  const errs = rec.byStatus((s) => s.status !== 429)
  const errorCount = Object.values(errs).reduce((a, b) => a + b, 0)
  const first = perMinute[0]!.p99
  const last = perMinute[perMinute.length - 1]!.p99
  // RSS trend over the last 5 minutes (or the second half of a shorter soak): least squares, MB/min
  const windowMs = Math.min(5, minutes / 2) * 60_000
  const tail = rss.filter((x) => x.t >= minutes * 60_000 - windowMs && Number.isFinite(x.mb))
  const mt = tail.reduce((a, x) => a + x.t, 0) / tail.length
  const mm = tail.reduce((a, x) => a + x.mb, 0) / tail.length
  const slope = tail.reduce((a, x) => a + (x.t - mt) * (x.mb - mm), 0) / Math.max(1e-9, tail.reduce((a, x) => a + (x.t - mt) ** 2, 0)) * 60_000
  const growth = slope * windowMs / 60_000
  out(`  requests ${rec.samples.length}; p99 per minute: ${perMinute.map((m) => fmtMs(m.p99)).join(', ')}`)
  const ops = [...new Set(rec.samples.map((s) => s.op))]
  const firstBad = rec.samples.filter((x) => x.status !== 429 && (x.status < 200 || x.status >= 300)).sort((a, b) => a.t0 - b.t0)[0]
  if (firstBad) out(`  first error: ${firstBad.op} ${firstBad.status} ${firstBad.code ?? ''} sent ${fmtMs(firstBad.t0 - start)} into the soak`)
  out(`  per operation: ${ops.map((op) => { const xs = rec.samples.filter((s) => s.op === op).map((s) => s.t1 - s.t0); return `${op} n=${xs.length} p50 ${fmtMs(pct(xs, 50))} p99 ${fmtMs(pct(xs, 99))}` }).join('; ')}`)
  out(`  CPU per minute (% of one core) service: ${cpu.map((c) => c.app.toFixed(0)).join(', ')}; driver: ${cpu.map((c) => c.driver.toFixed(0)).join(', ')}; driver event-loop delay p99/max per minute: ${cpu.map((c) => `${fmtMs(c.lagP99)}/${fmtMs(c.lagMax)}`).join(', ')}; machine load average (1 min) per minute: ${cpu.map((c) => c.load.toFixed(1)).join(', ')}`)
  out(`  RSS MB: first ${rss[0]?.mb.toFixed(0)}, max ${Math.max(...rss.map((x) => x.mb)).toFixed(0)}, last ${rss.at(-1)?.mb.toFixed(0)}; trend over the last ${(windowMs / 60_000).toFixed(1)} min ${slope.toFixed(2)} MB/min (${growth.toFixed(1)} MB over the window); streams open ${streamsAlive}/200, reconnects ${streamReconnects}`)
  verdict('4 soak', {
    requests: rec.samples.length,
    errors: fmtStatus(rec.byStatus()),
    lost: 0,
    recovery: 'n/a',
    checks: [
      [app.crashed === null, 'the process stayed up'],
      [errorCount === 0, `0 errors other than documented 429s (${fmtStatus(errs)})`],
      [last <= 2 * Math.max(first, 20), `p99 stable: first minute ${fmtMs(first)}, last ${fmtMs(last)} (≤ 2×, floor 20 ms)`],
      [tail.length >= 3 && growth <= Math.max(10, 0.05 * mm), `RSS flat over the last ${(windowMs / 60_000).toFixed(1)} min: ${growth.toFixed(1)} MB trend (≤ max(10 MB, 5 %))`],
      [streamsAlive === 200, `200 streams open throughout (${streamsAlive} connected, ${streamReconnects} reconnects)`]
    ]
  })
  await app.stop()
}

// ---- 5: Redis goes away -------------------------------------------------------------------------

async function startRedis (port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 })
  probe.on('error', () => {})
  await waitFor(async () => { if (probe.status !== 'ready') await probe.connect().catch(() => {}); return (await probe.ping()) === 'PONG' }, 10_000, 'redis-server answers')
  probe.disconnect()
  return child
}

async function scenarioRedis (): Promise<void> {
  out('\n## 5. Redis (the rate-limit store) goes away and comes back')
  const port = await freePort()
  let redis = await startRedis(port)
  const app = await startApp({ REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_MAX: '100000' })
  const u = await makeUser()
  const rec = new Recorder()
  const load = { running: true } // flipped when the scenario ends; read by the workers
  const workers = Array.from({ length: 20 }, async () => {
    while (load.running) {
      const t0 = now()
      rec.add('list', t0, await call(app.base, 'GET', '/workflows?limit=20', u.auth))
    }
  })
  const watcher = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 100, enableOfflineQueue: false })
  watcher.on('error', () => {})
  await sleep(3000)
  const keysBefore = (await watcher.keys('workflow-sync:rl:*')).length
  const tKill = now()
  const exited = new Promise((resolve) => redis.once('exit', resolve))
  redis.kill('SIGKILL')
  await exited
  await sleep(5000)
  const tStart = now()
  redis = await startRedis(port)
  let tBack = NaN
  await waitFor(async () => { const k = await watcher.keys('workflow-sync:rl:*'); if (k.length > 0) { tBack = now(); return true } return false }, 30_000, 'the service counts in Redis again').catch(() => {})
  await sleep(2000)
  load.running = false
  await Promise.all(workers)
  watcher.disconnect()
  const down = rec.samples.filter((s) => s.t0 >= tKill && s.t1 <= tStart)
  const downOk = down.filter((s) => s.status >= 200 && s.status < 300).length
  const errs = rec.byStatus()
  const recovery = tBack - tStart
  out(`  requests ${rec.samples.length}; while Redis was away ${down.length} (2xx ${downOk}, p99 ${fmtMs(pct(down.map((s) => s.t1 - s.t0), 99))}, max ${fmtMs(Math.max(0, ...down.map((s) => s.t1 - s.t0)))}); keys before ${keysBefore}; counting in Redis again ${fmtMs(recovery)} after it started`)
  verdict('5 Redis goes away', {
    requests: rec.samples.length,
    errors: fmtStatus(errs),
    lost: 0,
    recovery: fmtMs(recovery),
    checks: [
      [app.crashed === null, 'the process stayed up'],
      [keysBefore > 0, `the limiter counted in Redis before (${keysBefore} keys)`],
      [down.length > 0 && downOk === down.length, `requests kept being served while Redis was away (${downOk}/${down.length} 2xx)`],
      [Object.keys(errs).length === 0, `no error answers at all (${fmtStatus(errs)})`],
      [Number.isFinite(recovery) && recovery < 15_000, `back to counting in Redis by itself, ${fmtMs(recovery)} after it started (< 15 s)`]
    ]
  })
  await app.stop()
  redis.kill('SIGTERM')
}

// ---- main ---------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const started = now()
  out(`# npm run chaos (${new Date().toISOString()})`)
  cluster = await createPrivateCluster({ maxConnections: 300 })
  await cluster.sql('create database chaos')
  dbUrl = cluster.url('chaos')
  const db = new PgDatabase({ connectionString: dbUrl, max: 2 })
  await migrate(db)
  await db.close()
  sim = await SimClient.start()
  out(`private Postgres on port ${cluster.port} (${cluster.dir}); simulated n8n on ${sim.port}`)
  const scenarios: Array<[string, () => Promise<void>]> = [
    ['1', scenarioPostgresRestart], ['2', scenarioN8nFlaps], ['3', scenarioSigkill], ['4', scenarioSoak], ['5', scenarioRedis]
  ]
  try {
    for (const [id, fn] of scenarios) {
      if (ONLY && !ONLY.has(id)) continue
      const t0 = now()
      try {
        await fn()
      } catch (err) {
        out(`  scenario ${id} could not run: ${(err as Error).stack ?? String(err)}`)
        results.push({ scenario: `${id} (did not run to the end)`, requests: 0, errors: String((err as Error).message), lost: 0, recovery: 'n/a', pass: false, checks: [] })
      }
      out(`  (${fmtMs(now() - t0)})`)
    }
  } finally {
    await sim.stop().catch(() => {})
    await cluster.destroy().catch(() => {})
  }
  out(`\n## Summary (total ${fmtMs(now() - started)})\n`)
  out('| scenario | requests | errors by status | data lost | recovery time | verdict |')
  out('|---|---|---|---|---|---|')
  for (const r of results) out(`| ${r.scenario} | ${r.requests} | ${r.errors} | ${r.lost} | ${r.recovery} | ${r.pass ? 'PASS' : 'FAIL'} |`)
  process.exitCode = results.every((r) => r.pass) ? 0 : 1
}

await main()
