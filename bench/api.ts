// npm run bench:api — throughput of authenticated routes against a bare Fastify hello-world,
// all measured in this one run on this machine (these machines are noisy: compare side by side).
// BENCH_BEFORE_DIR=<a checkout of an older commit, with node_modules> also runs that checkout's
// service in the same run, interleaved route by route, for before/after figures.
// Besides req/s and latency, each row reports the server's CPU time per request (user + system,
// from process.cpuUsage in the server): on a shared machine it moves far less than req/s.
import { join } from 'node:path'
import { load, peakRssMb, startServer } from './lib.ts'
import type { LoadResult, Started } from './lib.ts'

const duration = Number(process.env.BENCH_DURATION ?? 10)
const here = new URL('.', import.meta.url).pathname
const beforeDir = process.env.BENCH_BEFORE_DIR

const hello = await startServer<{ port: number }>(`${here}servers/hello.ts`)
const helloUrl = `http://127.0.0.1:${hello.message.port}/`
await load(helloUrl, { duration: 2 })
const base = await load(helloUrl, { duration, server: hello.child })

type Svc = Started<{ port: number, token: string, tokens?: string[] }>
const services: Array<{ label: string, svc: Svc }> = []
if (beforeDir) services.push({ label: 'before', svc: await startServer(join(beforeDir, 'bench/servers/app.ts')) })
services.push({ label: beforeDir ? 'after' : 'this', svc: await startServer(`${here}servers/app.ts`) })

// multiUser: every request another of 50 callers (20 workflows each), in turn. writer: a sync's
// writes under the load (one of the caller's counts moved every 5 ms), so answers keep changing.
interface Case { name: string, path: string, goal: string, conditional?: boolean, multiUser?: boolean, writer?: boolean }
const cases: Case[] = [
  { name: 'GET /workflows?limit=50 (summaries of all 50 rows; RLS, pg)', path: '/workflows?limit=50', goal: '>= 20 %, p99 <= 25 ms' },
  { name: 'GET /workflows (default page of 20)', path: '/workflows', goal: '>= 20 %, p99 <= 25 ms' },
  { name: 'GET /workflows, 50 callers in turn (page of 20 each)', path: '/workflows', goal: '-', multiUser: true },
  { name: 'GET /workflows while a sync moves a count every 5 ms', path: '/workflows', goal: '-', writer: true },
  { name: 'GET /workflows?limit=50&include=definition', path: '/workflows?limit=50&include=definition', goal: '-' },
  { name: 'GET /workflows?limit=50 with If-None-Match (304)', path: '/workflows?limit=50', goal: '-', conditional: true },
  { name: 'GET /me (verified caller)', path: '/me', goal: '>= 80 %' }
]

const rows: Array<[string, string, LoadResult, string]> = []
for (const c of cases) {
  for (const { label, svc } of services) {
    const origin = `http://127.0.0.1:${svc.message.port}`
    const headers: Record<string, string> = { authorization: `Bearer ${svc.message.token}` }
    if (c.conditional) {
      const res = await fetch(`${origin}${c.path}`, { headers })
      const etag = res.headers.get('etag')
      await res.arrayBuffer()
      if (!etag) {
        console.log(`(${label}: ${c.path} sends no ETag; conditional row skipped)`)
        continue
      }
      headers['if-none-match'] = etag
    }
    const tokens = c.multiUser ? svc.message.tokens : undefined
    if (c.multiUser && !tokens) {
      console.log(`(${label}: its bench server has no other callers; row skipped)`)
      continue
    }
    await load(`${origin}${c.path}`, { duration: 2, headers, ...(tokens ? { tokens } : {}) })
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
    let name = c.name
    if (writes) {
      svc.child.send('writer-stop')
      const n = await writes
      name += n < 0 ? ' (this build\'s bench server has no writer)' : ` (${n} writes)`
    }
    rows.push([name, label, r, c.goal])
  }
}
const rss = services.map(({ label, svc }) => `${label} ${peakRssMb(svc.child.pid)} MB`).join(', ')
for (const { svc } of services) await svc.stop()
const helloRss = peakRssMb(hello.child.pid)
await hello.stop()

const pct = (x: number) => `${Math.round((x / base.rps) * 100)} %`
const cpuPct = (r: LoadResult) => (r.cpuUs && base.cpuUs ? `${Math.round((base.cpuUs / r.cpuUs) * 100)} %` : '-')
console.log(`\nautocannon: 50 connections, no pipelining, ${duration} s each, node ${process.version}; peak RSS: hello ${helloRss} MB, ${rss}\n`)
console.log('| target | build | req/s | p50 ms | p99 ms | errors/non-2xx | req/s of hello-world | CPU µs/req | CPU of hello-world / CPU | goal |')
console.log('|---|---|---|---|---|---|---|---|---|---|')
console.log(`| hello-world (bare Fastify) | - | ${base.rps} | ${base.p50} | ${base.p99} | ${base.errors}/${base.non2xx} | 100 % | ${base.cpuUs ?? '-'} | 100 % | - |`)
for (const [name, label, r, goal] of rows) {
  console.log(`| ${name} | ${label} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors}/${r.non2xx} | ${pct(r.rps)} | ${r.cpuUs ?? '-'} | ${cpuPct(r)} | ${goal} |`)
}
