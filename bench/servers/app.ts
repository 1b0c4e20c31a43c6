// The real service on server Postgres (a fresh database), with one user owning 50 workflows.
import { randomBytes, randomUUID } from 'node:crypto'
import pg from 'pg'
import { SignJWT } from 'jose'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'

const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const name = `ws_bench_${randomBytes(4).toString('hex')}`
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`create database ${name}`)
await admin.end()
const url = new URL(adminUrl)
url.pathname = `/${name}`
const secret = 'bench-secret-0123456789abcdef0123456789abcdef'
const config = loadConfig({
  NODE_ENV: 'production',
  LOG_LEVEL: 'silent',
  DATABASE_URL: url.toString(),
  SUPABASE_JWT_SECRET: secret,
  RATE_LIMIT_MAX: '1000000',
  N8N_API_URL: 'http://127.0.0.1:9/api/v1'
})
const app = await buildApp({ config, logger: false, swaggerUi: false })
const userId = randomUUID()
for (let i = 0; i < 50; i++) {
  await app.db.withUser({ sub: userId, role: 'authenticated' }, (tx) => tx.query(
    `insert into mvp_workflows (user_id, name, nodes, connections, settings, status, n8n_workflow_id)
     values ($1, $2, $3::jsonb, '{}'::jsonb, '{}'::jsonb, 'deployed', $4)`,
    [userId, `workflow ${i}`, JSON.stringify([{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: `p${i}`, httpMethod: 'POST' } }]), `n8n-${i}`]))
}
const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: 'bench@example.com' })
  .setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime('1h')
  .sign(new TextEncoder().encode(secret))
await app.listen({ port: 0, host: '127.0.0.1' })
const addr = app.server.address()
process.send?.({ port: typeof addr === 'object' && addr ? addr.port : 0, token })
process.on('message', async (m) => {
  if (m === 'stop') {
    await app.close()
    const c = new pg.Client({ connectionString: adminUrl })
    await c.connect()
    await c.query(`drop database if exists ${name} with (force)`)
    await c.end()
    process.exit(0)
  }
})
