import { execFileSync, fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, symlinkSync } from 'node:fs'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { SignJWT } from 'jose'
import pg from 'pg'
import type { SimClient, SimWorkflow, Truth } from './sim-n8n.ts'
import { userTag } from '../src/lib/user-tag.ts'

/** The heap flags `npm start` and the Docker image run the service with (see package.json). */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=256']

export interface Started<M> {
  child: ChildProcess
  message: M
  stop(): Promise<void>
}

/** Starts a bench server in its own process (the load generator must not share its event loop). */
/** `env`: added to this process's environment; `quiet`: the server's stdout to /dev/null (its log lines). */
export async function startServer<M extends { port: number }> (file: string, opts: { env?: Record<string, string>, quiet?: boolean } = {}): Promise<Started<M>> {
  const child = fork(file, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.quiet === true ? 'ignore' : 'inherit', 'inherit', 'ipc'],
    execArgv: ['--disable-warning=ExperimentalWarning', ...PRODUCTION_NODE_FLAGS]
  })
  const message = await new Promise<M>((resolve, reject) => {
    child.once('message', (m) => resolve(m as M))
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)))
  })
  return {
    child,
    message,
    async stop () {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      if (child.connected) child.send('stop')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      child.kill(child.connected ? 0 : 'SIGTERM')
      if (!child.connected) child.kill('SIGTERM')
      await exited
      clearTimeout(t)
    }
  }
}

/**
 * Pins a process (all its threads, and the threads it starts later) to one CPU with taskset.
 * bench:api runs the load generator on CPU 0 and the servers on CPU 1: left to the scheduler, the
 * two sometimes share a core, and a server's CPU per request then moves by a third between
 * processes of the same build. False where it cannot pin (one CPU, no taskset).
 */
export function pinToCpu (pid: number | undefined, cpu: number): boolean {
  // The machine's CPUs, not this process's (availableParallelism is 1 once this process is pinned).
  if (!pid || cpus().length < 2) return false
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Peak resident set size of a process so far (VmHWM), in MB. */
export function peakRssMb (pid: number | undefined): number {
  if (!pid) return NaN
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : NaN
}

export interface LoadResult {
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  /** Requests completed in the run. */
  total: number
  /** Server CPU time (user + system) per request in µs, when the server answers 'cpu' messages. */
  cpuUs?: number
}

/** Process CPU time of a bench server (it answers the 'cpu' message with process.cpuUsage()). */
export function serverCpu (child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      const cpu = (m as { cpu?: { user: number, system: number } }).cpu
      if (!cpu) return
      child.off('message', on)
      resolve(cpu.user + cpu.system)
    }
    child.on('message', on)
    child.send('cpu')
  })
}

export async function load (url: string, opts: { connections?: number, duration?: number, headers?: Record<string, string>, server?: ChildProcess, tokens?: string[] } = {}): Promise<LoadResult> {
  const before = opts.server ? await serverCpu(opts.server) : 0
  let next = 0
  const tokens = opts.tokens ?? []
  const r = await autocannon({
    url,
    connections: opts.connections ?? 50,
    pipelining: 1,
    duration: opts.duration ?? 10,
    headers: opts.headers ?? {},
    // tokens: each request signed in as the next caller in turn
    ...(tokens.length > 0 ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }) }] } : {})
  })
  const out: LoadResult = { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx, total: r.requests.total }
  if (opts.server) out.cpuUs = Math.round((await serverCpu(opts.server) - before) / Math.max(1, r.requests.total))
  return out
}

// ---- the sync benches' scaffolding (bench/sync.ts, bench/backfill.ts, bench/live.ts) ----------

/** A non-negative number from the environment, `def` when unset or empty. */
export function num (key: string, def: number): number {
  const v = process.env[key]
  if (v === undefined || v.trim() === '') return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${key} must be a non-negative number`)
  return n
}

/** A comma-separated list of positive integers from the environment. */
export function nums (key: string, def: string): number[] {
  return (process.env[key] ?? def).split(',').map((x) => Number(x.trim())).filter((n) => Number.isInteger(n) && n > 0)
}

/** This checkout's root (no trailing slash). */
export const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '')
export const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef'
/** The cron's secret of this run (the services started here get it). */
export const CRON_SECRET = 'bench-cron-' + randomBytes(24).toString('hex')
export const WEBHOOK_NODES = JSON.stringify([{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'p', httpMethod: 'POST' } }])

export function dbUrl (name: string): string {
  const u = new URL(ADMIN_URL)
  u.pathname = `/${name}`
  return u.toString()
}

export async function withClient<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** The databases a bench made, so that it drops them all at the end, whatever happened. */
export class BenchDatabases {
  readonly #names = new Set<string>()
  readonly prefix: string
  constructor (prefix: string) { this.prefix = prefix }

  async create (template?: string): Promise<string> {
    const name = `${this.prefix}_${randomBytes(4).toString('hex')}`
    await withClient(ADMIN_URL, (c) => c.query(`create database ${name}${template ? ` template ${template}` : ''}`))
    this.#names.add(name)
    return name
  }

  /** A new database migrated with the migrations (and migrator) of checkout `dir`. */
  async migrated (dir = ROOT): Promise<string> {
    const name = await this.create()
    const { PgDatabase } = await import(`${dir}/src/db/pg-database.ts`) as typeof import('../src/db/pg-database.ts')
    const { migrate } = await import(`${dir}/src/db/migrate.ts`) as typeof import('../src/db/migrate.ts')
    const db = new PgDatabase({ connectionString: dbUrl(name), max: 2 })
    await migrate(db)
    await db.close()
    return name
  }

  async drop (name: string): Promise<void> {
    await withClient(ADMIN_URL, (c) => c.query(`drop database if exists ${name} with (force)`))
    this.#names.delete(name)
  }

  async dropAll (): Promise<void> {
    for (const name of [...this.#names]) await this.drop(name).catch(() => {})
  }
}

// ---- users and workflows ----------------------------------------------------------------------

export interface BenchWf { id: string, n8nId: string }
export interface BenchUser { id: string, tag: string, token: string, workflows: BenchWf[] }

export { userTag } from '../src/lib/user-tag.ts'

/**
 * Users with a signed token each and `perUser` workflows (row ids fixed here, so that databases
 * of several checkouts match the same simulated n8n); `n8nId` names each workflow's n8n copy.
 */
export async function makeUsers (count: number, perUser: number, label: string, n8nId: () => string): Promise<BenchUser[]> {
  const users: BenchUser[] = []
  const key = new TextEncoder().encode(JWT_SECRET)
  for (let i = 0; i < count; i++) {
    const id = randomUUID()
    const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: `${label}${i}@example.com` })
      .setProtectedHeader({ alg: 'HS256' }).setSubject(id).setIssuedAt().setExpirationTime('2h').sign(key)
    users.push({ id, tag: userTag(id), token, workflows: Array.from({ length: perUser }, () => ({ id: randomUUID(), n8nId: n8nId() })) })
  }
  return users
}

/** Rows as a deploy leaves them (status deployed, n8n id set); `floor`: as a completed sync leaves it. */
export async function seedWorkflows (dbName: string, users: BenchUser[], floor: number | null = null): Promise<void> {
  const i_: string[] = []; const u: string[] = []; const n: string[] = []; const x: string[] = []
  for (const user of users) {
    user.workflows.forEach((w, j) => { i_.push(w.id); u.push(user.id); n.push(`flow ${j}`); x.push(w.n8nId) })
  }
  await withClient(dbUrl(dbName), async (c) => {
    for (let i = 0; i < u.length; i += 5000) {
      await c.query(
        `insert into mvp_workflows (id, user_id, name, status, active, n8n_workflow_id, nodes, execution_floor_id)
         select t.i, t.u, t.n, 'deployed', false, t.x, $5::jsonb, $6::bigint from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) as t(i, u, n, x)`,
        [i_.slice(i, i + 5000), u.slice(i, i + 5000), n.slice(i, i + 5000), x.slice(i, i + 5000), WEBHOOK_NODES, floor])
    }
    // Statistics for the seeded rows only: analysing the still-empty ledger would record it as empty,
    // and plpgsql's cached generic plans would then seq-scan it as it grows.
    await c.query('analyze mvp_workflows')
  })
}

/** n8n's copies of the users' workflows, carrying the rows' markers as deploys leave them. */
export function simWorkflows (users: BenchUser[]): SimWorkflow[] {
  return users.flatMap((u) => u.workflows.map((w, j) => ({ id: w.n8nId, name: `${u.tag} flow ${j}`, active: false, rowId: w.id, userId: u.id })))
}

/** A workflow's counts (n, ok, failed) and its ledger's (ln, lok, lfailed), as Postgres returns them. */
export interface CountsRow { id: string, n: string, ok: string, failed: string, ln: string, lok: string, lfailed: string }

/** The simulator's truth for these workflows and their rows' counts beside their ledger's. */
export async function countsAndTruth (c: pg.Client, sim: SimClient, wfs: BenchWf[]): Promise<{ truth: Truth, byId: Map<string, CountsRow> }> {
  const truth = await sim.request<Truth>({ op: 'truth', workflowIds: wfs.map((w) => w.n8nId) })
  const r = await c.query<CountsRow>(
    `select w.id, w.execution_count as n, w.successful_executions as ok, w.failed_executions as failed,
            coalesce(l.n, 0) as ln, coalesce(l.ok, 0) as lok, coalesce(l.failed, 0) as lfailed
       from mvp_workflows w
       left join (select workflow_id, count(*) filter (where count_category is not null) as n,
                         count(*) filter (where count_category = 'success') as ok,
                         count(*) filter (where count_category = 'failed') as failed
                    from workflow_executions where workflow_id = any($1::uuid[]) group by workflow_id) l on l.workflow_id = w.id
      where w.id = any($1::uuid[])`, [wfs.map((w) => w.id)])
  return { truth, byId: new Map(r.rows.map((x) => [x.id, x])) }
}

/**
 * Workflows (of these) whose counts or ledger differ from the simulator's truth; 0 = exact.
 * `wfs`: row id and n8n id of each.
 */
export async function ledgerMismatches (c: pg.Client, sim: SimClient, wfs: BenchWf[]): Promise<number> {
  const { truth, byId } = await countsAndTruth(c, sim, wfs)
  let mismatches = 0
  for (const w of wfs) {
    const t = (truth[w.n8nId] ?? [0, 0, 0]).join()
    const row = byId.get(w.id)
    if (!row || [row.n, row.ok, row.failed].map(Number).join() !== t || [row.ln, row.lok, row.lfailed].map(Number).join() !== t) mismatches++
  }
  return mismatches
}

// ---- the service ------------------------------------------------------------------------------

export interface Service { child: ChildProcess, origin: string, stop(): Promise<void> }

/**
 * bench/servers/sync-app.ts of checkout `dir` in a process of its own, on database `dbName`,
 * against the simulator at `n8nUrl`; `env`: more variables (N8N_CONCURRENCY, ...).
 */
export async function startSyncApp (opts: { dir?: string, dbName: string, n8nUrl: string, env?: Record<string, string>, execArgv?: string[] }): Promise<Service> {
  const child = fork(`${opts.dir ?? ROOT}/bench/servers/sync-app.ts`, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--disable-warning=ExperimentalWarning', ...(opts.execArgv ?? [])],
    env: {
      ...process.env,
      BENCH_DATABASE_URL: dbUrl(opts.dbName),
      BENCH_JWT_SECRET: JWT_SECRET,
      CRON_SECRET,
      N8N_API_URL: opts.n8nUrl,
      ...opts.env
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

// ---- CPU --------------------------------------------------------------------------------------

/** CPU seconds (user + system) a process used so far; 0 once it is gone. */
export function cpuSeconds (pid: number | undefined): number {
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
export async function backendCpu<T> (dbName: string, fn: () => Promise<T>): Promise<{ value: T, seconds: number }> {
  const c = new pg.Client({ connectionString: ADMIN_URL })
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
    const work = { done: false }
    const loop = (async () => { while (!work.done) { await sleep(200); await sample() } })()
    const value = await fn().finally(() => { work.done = true })
    await loop
    await sample()
    let seconds = 0
    for (const [pid, s] of last) seconds += s - (first.get(pid) ?? 0)
    return { value, seconds }
  } finally {
    await c.end()
  }
}

// ---- before/after -----------------------------------------------------------------------------

/**
 * The checkouts to measure side by side with this one: BENCH_BASELINE, comma-separated `label=dir`
 * or `dir` (label "before"), each a checkout of another commit with its node_modules; 'none': this
 * checkout only; unset: `fallback()` (a default checkout) or none.
 */
export function baselines (fallback?: () => string): Array<[string, string]> {
  const b = process.env.BENCH_BASELINE
  if (b === 'none' || (!b && !fallback)) return []
  if (b) {
    return b.split(',').map((x) => x.trim()).filter(Boolean).map((x): [string, string] => {
      const i = x.indexOf('=')
      return i > 0 ? [x.slice(0, i), x.slice(i + 1)] : ['before', x]
    })
  }
  return [['before', (fallback as () => string)()]]
}

/** A detached worktree of `commit` in /tmp (made once), sharing this checkout's node_modules. */
export function worktreeOf (commit: string): string {
  const dir = `/tmp/workflow-sync-base-${commit}`
  if (!existsSync(`${dir}/src`)) execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, commit], { stdio: 'ignore' })
  if (!existsSync(`${dir}/node_modules`)) symlinkSync(`${ROOT}/node_modules`, `${dir}/node_modules`)
  return dir
}
