// npm run bench:api — throughput of authenticated routes against a bare Fastify hello-world,
// all measured in this one run on this machine (these machines are noisy: compare side by side).
import { load, peakRssMb, startServer } from './lib.ts'

const duration = Number(process.env.BENCH_DURATION ?? 10)
const here = new URL('.', import.meta.url).pathname

const hello = await startServer<{ port: number }>(`${here}servers/hello.ts`)
await load(`http://127.0.0.1:${hello.message.port}/`, { duration: 2 })
const base = await load(`http://127.0.0.1:${hello.message.port}/`, { duration })
const helloRss = peakRssMb(hello.child.pid)
await hello.stop()

const svc = await startServer<{ port: number, token: string }>(`${here}servers/app.ts`)
const headers = { authorization: `Bearer ${svc.message.token}` }
const origin = `http://127.0.0.1:${svc.message.port}`
await load(`${origin}/workflows?limit=50`, { duration: 2, headers })
const list = await load(`${origin}/workflows?limit=50`, { duration, headers })
const page = await load(`${origin}/workflows`, { duration, headers })
await load(`${origin}/me`, { duration: 2, headers })
const me = await load(`${origin}/me`, { duration, headers })
const svcRss = peakRssMb(svc.child.pid)
await svc.stop()

const pct = (x: number) => `${Math.round((x / base.rps) * 100)} %`
const rows = [
  ['hello-world (bare Fastify)', base, '100 %', helloRss, '-'],
  ['GET /workflows?limit=50 (all 50 rows; RLS, pg)', list, pct(list.rps), svcRss, '>= 20 %, p99 <= 25 ms'],
  ['GET /workflows (default page of 20; RLS, pg)', page, pct(page.rps), svcRss, '>= 20 %, p99 <= 25 ms'],
  ['GET /me (verified caller)', me, pct(me.rps), svcRss, '>= 80 %']
] as const
console.log(`\nautocannon: 50 connections, no pipelining, ${duration} s each, node ${process.version}\n`)
console.log('| target | req/s | p50 ms | p99 ms | errors/non-2xx | of hello-world | peak RSS MB | goal |')
console.log('|---|---|---|---|---|---|---|---|')
for (const [name, r, ratio, rss, goal] of rows) {
  console.log(`| ${name} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors}/${r.non2xx} | ${ratio} | ${rss} | ${goal} |`)
}
