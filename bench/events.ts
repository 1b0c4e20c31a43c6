// npm run bench:events — P4: update → event delivered at a subscriber, with 500 open streams of
// 500 different users and 1,000 direct SQL updates of those users' rows, spread across the users.
// The service runs in its own process (a fresh Postgres database, default settings); this process
// holds the 500 streams and issues the updates. Latency = event parsed by the subscriber − update
// statement sent. Two runs: paced (BENCH_RATE updates/s) and a burst (BENCH_CONNECTIONS
// connections issuing back to back). Target: p99 ≤ 100 ms.
import http from 'node:http'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { SignJWT } from 'jose'
import { peakRssMb, startServer } from './lib.ts'

const STREAMS = Number(process.env.BENCH_STREAMS ?? 500)
const UPDATES = Number(process.env.BENCH_UPDATES ?? 1000)
const RATE = Number(process.env.BENCH_RATE ?? 500)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8)
const here = new URL('.', import.meta.url).pathname

interface Ready { port: number, databaseUrl: string, secret: string }
const svc = await startServer<Ready>(`${here}servers/events.ts`)
const { port, databaseUrl, secret } = svc.message
const db = new pg.Pool({ connectionString: databaseUrl, max: CONNECTIONS })

// 500 users, one workflow each (seeded as the owner, before any stream is open)
const users = Array.from({ length: STREAMS }, () => ({ id: randomUUID(), workflowId: randomUUID(), token: '' }))
await db.query(
  `insert into mvp_workflows (id, user_id, name, nodes, status)
   select w, u, 'seed', '[{"name":"Webhook","type":"n8n-nodes-base.webhook","typeVersion":2,"position":[0,0],"parameters":{"path":"p"}}]'::jsonb, 'deployed'
     from unnest($1::uuid[], $2::uuid[]) as t(w, u)`,
  [users.map((u) => u.workflowId), users.map((u) => u.id)])
const key = new TextEncoder().encode(secret)
for (const u of users) {
  u.token = await new SignJWT({ role: 'authenticated', aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' }).setSubject(u.id).setIssuedAt().setExpirationTime('1h').sign(key)
}

// ---- the subscribers ------------------------------------------------------------------------------
const sentAt = new Map<string, number>()
const latencies: number[] = []
let wrongUser = 0
let unexpected = 0
let finalEvents = 0
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
const requests: http.ClientRequest[] = []

function subscribe (u: typeof users[number]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent, headers: { authorization: `Bearer ${u.token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream answered ${res.statusCode}`))
        return
      }
      res.setEncoding('utf8')
      let buf = ''
      res.on('data', (chunk: string) => {
        const now = performance.now()
        buf += chunk
        let i: number
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i)
          buf = buf.slice(i + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event === 'ready') {
            resolve()
          } else if (event === 'workflow.update' && data) {
            const row = JSON.parse(data) as { user_id: string, name: string }
            if (row.user_id !== u.id) wrongUser++
            const sent = sentAt.get(row.name)
            if (sent === undefined) unexpected++
            else latencies.push(now - sent)
          } else if (event === 'overflow' || event === 'shutdown' || event === 'reauthenticate') {
            finalEvents++
          }
        }
      })
    })
    req.on('error', reject)
    requests.push(req)
  })
}

const openStarted = performance.now()
for (let i = 0; i < users.length; i += 50) await Promise.all(users.slice(i, i + 50).map(subscribe))
const openMs = Math.round(performance.now() - openStarted)

// ---- the updates ----------------------------------------------------------------------------------
async function run (label: string, paced: boolean): Promise<Record<string, string | number>> {
  latencies.length = 0
  const started = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    const client = await db.connect()
    try {
      for (;;) {
        const k = next++
        if (k >= UPDATES) return
        if (paced) {
          const due = started + (k * 1000) / RATE
          const wait = due - performance.now()
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        }
        const u = users[(k * 7919) % users.length]!
        const name = `${label}-${k}`
        sentAt.set(name, performance.now())
        await client.query('update mvp_workflows set name = $2, version = version + 1 where id = $1', [u.workflowId, name])
      }
    } finally {
      client.release()
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, worker))
  const issuedMs = performance.now() - started
  const deadline = Date.now() + 30_000
  while (latencies.length < UPDATES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const sorted = [...latencies].sort((a, b) => a - b)
  const pct = (p: number) => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
  return {
    run: label,
    updates_per_s: Math.round(UPDATES / (issuedMs / 1000)),
    delivered: `${latencies.length}/${UPDATES}`,
    p50_ms: pct(50).toFixed(1),
    p90_ms: pct(90).toFixed(1),
    p99_ms: pct(99).toFixed(1),
    max_ms: (sorted.at(-1) ?? NaN).toFixed(1)
  }
}

// warm-up (JIT, pool connections): 100 updates, not reported
const warm = await (async () => {
  const c = await db.connect()
  try {
    for (let k = 0; k < 100; k++) {
      const u = users[k % users.length]!
      sentAt.set(`warm-${k}`, performance.now())
      await c.query('update mvp_workflows set name = $2 where id = $1', [u.workflowId, `warm-${k}`])
    }
  } finally {
    c.release()
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  return latencies.length
})()

const paced = await run('paced', true)
const burst = await run('burst', false)
const stats = await new Promise<{ stats: Record<string, number>, streams: number }>((resolve) => {
  svc.child.once('message', (m) => resolve(m as { stats: Record<string, number>, streams: number }))
  svc.child.send('stats')
})
const rss = peakRssMb(svc.child.pid)

for (const r of requests) r.destroy()
agent.destroy()
await db.end()
await svc.stop()

console.log(`\nP4 — ${STREAMS} open streams (one per user), ${UPDATES} direct SQL updates spread across the users, node ${process.version}`)
console.log(`streams opened in ${openMs} ms; warm-up delivered ${warm}/100\n`)
console.log('| run | updates/s issued | delivered | p50 ms | p90 ms | p99 ms | max ms |')
console.log('|---|---|---|---|---|---|---|')
for (const r of [paced, burst]) console.log(`| ${r.run}${r.run === 'paced' ? ` (${RATE}/s, ${CONNECTIONS} conns)` : ` (${CONNECTIONS} conns back to back)`} | ${r.updates_per_s} | ${r.delivered} | ${r.p50_ms} | ${r.p90_ms} | ${r.p99_ms} | ${r.max_ms} |`)
console.log(`\nserver peak RSS: ${rss} MB; open streams at the end: ${stats.streams}; hub stats: ${JSON.stringify(stats.stats)}`)
console.log(`events for another user: ${wrongUser}; unexpected events: ${unexpected}; final events (overflow/shutdown): ${finalEvents}`)
console.log('target: p99 <= 100 ms')
