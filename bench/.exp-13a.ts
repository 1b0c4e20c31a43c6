import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import autocannon from 'autocannon'
const dur = Number(process.env.D ?? 4)
async function start (file: string, env: Record<string, string> = {}) {
  const child = fork(file, { execArgv: ['--max-semi-space-size=4', '--max-old-space-size=256'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const m: any = await new Promise((r) => child.once('message', r))
  return { child, m, stop: async () => { child.send('stop'); child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)) } }
}
function cpu (c: ChildProcess): Promise<number> {
  return new Promise((r) => { c.once('message', (m: any) => r(m.cpu.user + m.cpu.system)); c.send('cpu') })
}
async function run (c: ChildProcess, url: string, headers = {}) {
  await autocannon({ url, connections: 50, duration: 1, headers })
  const c0 = await cpu(c)
  const r = await autocannon({ url, connections: 50, duration: dur, headers })
  const c1 = await cpu(c)
  return { rps: Math.round(r.requests.average), p99: r.latency.p99, us: (c1 - c0) / r.requests.total }
}
const hello = await start('/tmp/13a-before/bench/servers/hello.ts')
const h0 = await run(hello.child, `http://127.0.0.1:${hello.m.port}/`)
console.log('hello', h0)
await hello.stop()
const file = process.env.F ?? '/tmp/13a-before/bench/servers/app.ts'
const urls = (process.env.U ?? '/me').split(' ')
for (const env of (process.argv[2] ?? '').split(';').map((s) => Object.fromEntries(s.split(',').filter(Boolean).map((k) => [k, '1'])))) {
  const s = await start(file, env)
  const h = { authorization: `Bearer ${s.m.token}` }
  for (const u of urls) {
    const r = await run(s.child, `http://127.0.0.1:${s.m.port}${u}`, h)
    console.log(JSON.stringify(env), u, r, `cpu ratio ${(h0.us / r.us * 100).toFixed(0)} %`)
  }
  await s.stop()
}
