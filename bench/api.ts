// npm run bench:api — throughput of authenticated routes against a bare Fastify hello-world,
// all measured in this one run on this machine (these machines are noisy: compare side by side).
// BENCH_BEFORE_DIR=<a checkout of an older commit, with node_modules> also runs that checkout's
// service in the same run, interleaved route by route, for before/after figures.
// The run is BENCH_ROUNDS rounds (default 3) of BENCH_DURATION seconds (default 5) per row, each
// round measuring hello-world again first: a row's share of hello-world is the median over the
// rounds of its req/s over that round's hello-world, so a burst of noise on the machine moves one
// round, not the figure. Other columns are medians over the rounds.
// Besides req/s and latency, each row reports the server's CPU time per request (user + system,
// from process.cpuUsage in the server): on a shared machine it moves far less than req/s.
// The load generator runs on CPU 0 and every server on CPU 1 (BENCH_PIN=0: wherever the
// scheduler puts them; Postgres is never pinned).
// One more row runs the service with its own logger at LOG_LEVEL=info (the default), writing its
// request lines to /dev/null; every other row runs it without a logger.
// BENCH_ONLY=<text> runs only the rows whose name contains it (e.g. BENCH_ONLY=/me: the floor and
// GET /me with and without logs), for repeated launches of one comparison.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { load, peakRssMb, pinToCpu, startServer } from './lib.ts'
import type { LoadResult, Started } from './lib.ts'

const duration = Number(process.env.BENCH_DURATION ?? 5)
const rounds = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 3)))
const here = new URL('.', import.meta.url).pathname
const beforeDir = process.env.BENCH_BEFORE_DIR

type Svc = Started<{ port: number, token?: string, tokens?: string[] }>
const pin = process.env.BENCH_PIN !== '0' && pinToCpu(process.pid, 0)
const pinned = <T extends { child: { pid?: number | undefined } }>(s: T): T => {
  if (pin) pinToCpu(s.child.pid, 1)
  return s
}
const hello = pinned(await startServer<{ port: number }>(`${here}servers/hello.ts`))
const helloUrl = `http://127.0.0.1:${hello.message.port}/`
// GET /me's answer (its headers and body) from a bare Fastify: the floor under the /me row.
const shaped: Svc = pinned(await startServer(`${here}servers/hello-me-shaped.ts`))
/** The service of each build (the older checkout's first), started with `opts`. */
async function startBuilds (opts: Parameters<typeof startServer>[1] = {}): Promise<Array<{ label: string, svc: Svc }>> {
  const builds: Array<{ label: string, svc: Svc }> = []
  if (beforeDir) builds.push({ label: 'before', svc: pinned(await startServer(join(beforeDir, 'bench/servers/app.ts'), opts)) })
  builds.push({ label: beforeDir ? 'after' : 'this', svc: pinned(await startServer(`${here}servers/app.ts`, opts)) })
  return builds
}
const services = await startBuilds()
// The same service with its own logger at LOG_LEVEL=info, the default (a line per request,
// written to /dev/null): what production pays per request for request logs. An older build
// whose bench server cannot log (before BENCH_APP_LOG_LEVEL) would run without a logger: its
// row is left out.
const logged = await startBuilds({ env: { BENCH_APP_LOG_LEVEL: 'info' }, quiet: true })
if (beforeDir && !readFileSync(join(beforeDir, 'bench/servers/bench-app.ts'), 'utf8').includes('BENCH_APP_LOG_LEVEL')) {
  console.log('(before: its bench server cannot log; the LOG_LEVEL=info row has no before)')
  await logged.shift()!.svc.stop()
}

// multiUser: every request another of 50 callers (20 workflows each), in turn. writer: a sync's
// writes under the load (one of the caller's counts moved every 5 ms), so answers keep changing.
// floor: measured on the shaped hello-world instead of the services.
// logged: measured on the services that log at info.
interface Case { name: string, path: string, goal: string, conditional?: boolean, multiUser?: boolean, writer?: boolean, floor?: boolean, logged?: boolean }
const cases: Case[] = [
  { name: 'GET /workflows?limit=50 (summaries of all 50 rows; RLS, pg)', path: '/workflows?limit=50', goal: '>= 20 %, p99 <= 25 ms' },
  { name: 'GET /workflows (default page of 20)', path: '/workflows', goal: '>= 20 %, p99 <= 25 ms' },
  { name: 'GET /workflows, 50 callers in turn (page of 20 each)', path: '/workflows', goal: '-', multiUser: true },
  { name: 'GET /workflows while a sync moves a count every 5 ms', path: '/workflows', goal: '-', writer: true },
  { name: 'GET /workflows?limit=50&include=definition', path: '/workflows?limit=50&include=definition', goal: '-' },
  { name: 'GET /workflows?limit=50 with If-None-Match (304)', path: '/workflows?limit=50', goal: '-', conditional: true },
  { name: 'hello-world answering /me\'s headers and body (no logic: the floor for /me)', path: '/me', goal: '-', floor: true },
  { name: 'GET /me (verified caller)', path: '/me', goal: '>= 80 %' },
  { name: 'GET /me with request logs (LOG_LEVEL=info, the default; lines to /dev/null)', path: '/me', goal: '-', logged: true }
]

interface Row { name: string, label: string, goal: string, runs: LoadResult[], ratios: number[], writes: number[] }
const only = process.env.BENCH_ONLY
const selected = only ? cases.filter((c) => c.name.includes(only)) : cases
if (selected.length === 0) throw new Error(`BENCH_ONLY=${only}: no row's name contains it`)
const rows = new Map<string, Row>()
const helloRuns: LoadResult[] = []

/** One measurement of a case on a service; undefined when the service cannot run it. */
async function measure (c: Case, label: string, svc: Svc, warm: boolean): Promise<{ r: LoadResult, writes?: number } | undefined> {
  const origin = `http://127.0.0.1:${svc.message.port}`
  const headers: Record<string, string> = svc.message.token ? { authorization: `Bearer ${svc.message.token}` } : {}
  if (c.conditional) {
    const res = await fetch(`${origin}${c.path}`, { headers })
    const etag = res.headers.get('etag')
    await res.arrayBuffer()
    if (!etag) {
      if (warm) console.log(`(${label}: ${c.path} sends no ETag; conditional row skipped)`)
      return undefined
    }
    headers['if-none-match'] = etag
  }
  const tokens = c.multiUser ? svc.message.tokens : undefined
  if (c.multiUser && !tokens) {
    if (warm) console.log(`(${label}: its bench server has no other callers; row skipped)`)
    return undefined
  }
  if (warm) await load(`${origin}${c.path}`, { duration: 2, headers, ...(tokens ? { tokens } : {}) })
  let writes: Promise<number> | undefined
  if (c.writer) {
    svc.child.send('writer-start')
    writes = new Promise((resolve) => {
      const on = (m: unknown) => {
        const w = (m as { writes?: number }).writes
        if (w === undefined) return
        svc.child.off('message', on)
        resolve(w)
      }
      svc.child.on('message', on)
      setTimeout(() => { svc.child.off('message', on); resolve(-1) }, (duration + 5) * 1000).unref()
    })
  }
  const r = await load(`${origin}${c.path}`, { duration, headers, server: svc.child, ...(tokens ? { tokens } : {}) })
  if (!writes) return { r }
  svc.child.send('writer-stop')
  return { r, writes: await writes }
}

for (let round = 0; round < rounds; round++) {
  const warm = round === 0
  if (warm) await load(helloUrl, { duration: 2 })
  const base = await load(helloUrl, { duration, server: hello.child })
  helloRuns.push(base)
  for (const c of selected) {
    for (const { label, svc } of c.floor ? [{ label: '-', svc: shaped }] : c.logged ? logged : services) {
      const m = await measure(c, label, svc, warm)
      if (!m) continue
      const key = `${c.name}\u0000${label}`
      let row = rows.get(key)
      if (!row) rows.set(key, row = { name: c.name, label, goal: c.goal, runs: [], ratios: [], writes: [] })
      row.runs.push(m.r)
      row.ratios.push(m.r.rps / base.rps)
      if (m.writes !== undefined) row.writes.push(m.writes)
    }
  }
}
const rss = services.map(({ label, svc }) => `${label} ${peakRssMb(svc.child.pid)} MB`).join(', ')
for (const { svc } of [...services, ...logged]) await svc.stop()
await shaped.stop()
const helloRss = peakRssMb(hello.child.pid)
await hello.stop()

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const med = (runs: LoadResult[], pick: (r: LoadResult) => number | undefined): string => {
  const xs = runs.map(pick).filter((x): x is number => x !== undefined)
  return xs.length === 0 ? '-' : String(Math.round(median(xs) * 10) / 10)
}
const helloCpu = median(helloRuns.map((r) => r.cpuUs ?? NaN))
const pct = (x: number): string => `${Math.round(x * 100)} %`
const spread = (xs: number[]): string => xs.length > 1 ? ` (${xs.map((x) => Math.round(x * 100)).sort((a, b) => a - b).join('–')})` : ''

console.log(`\nautocannon: 50 connections, no pipelining, ${rounds} round(s) of ${duration} s per row, ${pin ? 'load generator on CPU 0, servers on CPU 1' : 'not pinned to CPUs'}, node ${process.version}; peak RSS: hello ${helloRss} MB, ${rss}\n`)
console.log('| target | build | req/s | p50 ms | p99 ms | errors/non-2xx | req/s of hello-world (rounds) | CPU µs/req | CPU of hello-world / CPU | goal |')
console.log('|---|---|---|---|---|---|---|---|---|---|')
const sum = (runs: LoadResult[], pick: (r: LoadResult) => number): number => runs.reduce((a, r) => a + pick(r), 0)
console.log(`| hello-world (bare Fastify) | - | ${med(helloRuns, (r) => r.rps)} | ${med(helloRuns, (r) => r.p50)} | ${med(helloRuns, (r) => r.p99)} | ${sum(helloRuns, (r) => r.errors)}/${sum(helloRuns, (r) => r.non2xx)} | 100 % | ${med(helloRuns, (r) => r.cpuUs)} | 100 % | - |`)
for (const row of rows.values()) {
  const cpu = median(row.runs.map((r) => r.cpuUs ?? NaN))
  const cpuShare = Number.isFinite(cpu) && Number.isFinite(helloCpu) ? pct(helloCpu / cpu) : '-'
  const writes = row.writes.length > 0 ? (row.writes.some((w) => w < 0) ? ' (this build\'s bench server has no writer)' : ` (${Math.round(median(row.writes))} writes per round)`) : ''
  console.log(`| ${row.name}${writes} | ${row.label} | ${med(row.runs, (r) => r.rps)} | ${med(row.runs, (r) => r.p50)} | ${med(row.runs, (r) => r.p99)} | ${sum(row.runs, (r) => r.errors)}/${sum(row.runs, (r) => r.non2xx)} | ${pct(median(row.ratios))}${spread(row.ratios)} | ${med(row.runs, (r) => r.cpuUs)} | ${cpuShare} | ${row.goal} |`)
}
