import Fastify from 'fastify'
import { performance } from 'node:perf_hooks'
import { SignJWT } from 'jose'
import { randomUUID } from 'node:crypto'
const root = process.env.R ?? '/work/wt/issue-13a'
const { startBenchApp, BENCH_SECRET } = await import(`${root}/bench/servers/bench-app.ts`)
const { app, close } = await startBenchApp('ws_micro')
const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: 'b@example.com' }).setProtectedHeader({ alg: 'HS256' }).setSubject(randomUUID()).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(BENCH_SECRET))
const hello = Fastify({ logger: false }); hello.get('/', async () => ({ hello: 'world' })); await hello.ready()
async function time (f: any, url: string, headers = {}) {
  const N = 4000
  for (let i = 0; i < 500; i++) await f.inject({ url, headers })
  const c0 = process.cpuUsage(); const t0 = performance.now()
  for (let i = 0; i < N; i++) await f.inject({ url, headers })
  const c = process.cpuUsage(c0)
  return ((c.user + c.system) / N).toFixed(1)
}
for (let k = 0; k < 3; k++) console.log('hello', await time(hello, '/'), 'me', await time(app, '/me', { authorization: `Bearer ${token}` }), 'health', await time(app, '/health'))
await close()
