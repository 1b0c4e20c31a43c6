// The real service on server Postgres (a fresh database), with one user owning 50 workflows.
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { BENCH_SECRET, startBenchApp } from './bench-app.ts'

const { app, close } = await startBenchApp('ws_bench')
const userId = randomUUID()
for (let i = 0; i < 50; i++) {
  // seeded as the service: status and n8n ids are not the user's to write (README: Security model)
  await app.db.asService((tx) => tx.query(
    `insert into mvp_workflows (user_id, name, nodes, connections, settings, status, n8n_workflow_id)
     values ($1, $2, $3::jsonb, '{}'::jsonb, '{}'::jsonb, 'deployed', $4)`,
    [userId, `workflow ${i}`, JSON.stringify([{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: `p${i}`, httpMethod: 'POST' } }]), `n8n-${i}`]))
}
const tokenOf = (sub: string) => new SignJWT({ role: 'authenticated', aud: 'authenticated', email: 'bench@example.com' })
  .setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h')
  .sign(new TextEncoder().encode(BENCH_SECRET))
const token = await tokenOf(userId)
// 50 more users with 20 workflows each: the rows where every request is another caller's
const others = Array.from({ length: 50 }, () => randomUUID())
await app.db.asService((tx) => tx.query(
  `insert into mvp_workflows (user_id, name, status, n8n_workflow_id)
   select u, 'workflow ' || i, 'deployed', 'n8n-' || u || '-' || i from unnest($1::uuid[]) as u, generate_series(1, 20) as i`, [others]))
const tokens = await Promise.all(others.map(tokenOf))
// On 'writer-start': a sync's writes under the load, one count of the bench user moved every 5 ms.
let writer: NodeJS.Timeout | null = null
let writes = 0
const writeOnce = () => app.db.query('update mvp_workflows set execution_count = execution_count + 1 where id = (select id from mvp_workflows where user_id = $1 order by created_at desc limit 1)', [userId]).then(() => { writes++ })
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, token, tokens })
process.on('message', async (m) => {
  if (m === 'writer-start' && !writer) writer = setInterval(() => { void writeOnce() }, 5)
  if (m === 'writer-stop' && writer) {
    clearInterval(writer)
    writer = null
    process.send?.({ writes })
  }
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() })
  if (m === 'stop') {
    await close()
    process.exit(0)
  }
})
