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
const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: 'bench@example.com' })
  .setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime('1h')
  .sign(new TextEncoder().encode(BENCH_SECRET))
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, token })
process.on('message', async (m) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() })
  if (m === 'stop') {
    await close()
    process.exit(0)
  }
})
