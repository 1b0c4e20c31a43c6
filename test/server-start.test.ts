// `npm start` on a fresh clone: embedded PGlite, a generated dev secret, a printed demo token that works.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

const serverFile = new URL('../src/server.ts', import.meta.url).pathname

t.test('first run: embedded database, dev secret, demo token, a working API', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-first-run-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    PORT: '0',
    PGLITE_DIR: join(dir, 'pglite'),
    N8N_API_URL: 'http://127.0.0.1:9/api/v1', // nothing listens: n8n is "down"
    N8N_RETRIES: '0',
    N8N_TIMEOUT_MS: '500'
  }
  const child = spawn(process.execPath, [serverFile], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += String(d) })
  child.stderr.on('data', (d) => { out += String(d) })
  const started = Date.now()
  // A first start creates the embedded database (PGlite init + every migration): seconds alone, far more on a loaded CI machine.
  // The token (stdout) and the log lines travel separately: wait for both before reading them.
  while (!(/\n {2}eyJ/.test(out) && /generated development secret/.test(out)) && Date.now() - started < 120_000 && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]
  t.ok(port, `the server listens (output: ${out.slice(0, 300)})`)
  t.match(out, /generated development secret/, 'it says loudly that a dev secret was generated')
  t.match(out, /"database":"pglite"/, 'embedded PGlite')
  const token = /\n {2}(eyJ[\w-]+\.[\w-]+\.[\w-]+)\n/.exec(out)?.[1]
  t.ok(token, 'a demo token is printed')
  const base = `http://127.0.0.1:${port}`
  const auth = { authorization: `Bearer ${token}` }
  const me = await fetch(`${base}/me`, { headers: auth })
  t.equal(me.status, 200)
  t.equal((await me.json() as { role: string }).role, 'authenticated')
  const created = await fetch(`${base}/workflows`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'first' }) })
  t.equal(created.status, 201)
  const body = await created.json() as { id: string, status: string, last_error: string }
  t.equal(body.status, 'pending', 'n8n is down: the workflow is kept, pending')
  t.match(body.last_error, /n8n is unavailable/)
  const list = await fetch(`${base}/workflows`, { headers: auth })
  t.equal((await list.json() as { data: unknown[] }).data.length, 1)
  const docs = await fetch(`${base}/docs/`)
  t.equal(docs.status, 200, 'Swagger UI')
  child.kill('SIGTERM')
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  t.equal(code, 0, 'SIGTERM exits 0')
  const logLines = out.split('\n').filter((l) => l.startsWith('{'))
  t.ok(logLines.length > 5)
  t.notOk(logLines.some((l) => l.includes(token!)), 'the token is never in a log line')
})

t.test('production without auth configuration refuses to start, naming what is missing', async (t) => {
  const child = spawn(process.execPath, [serverFile], { env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PGLITE_DIR: 'memory' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += String(d) })
  child.stderr.on('data', (d) => { out += String(d) })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  t.equal(code, 1)
  t.match(out, /SUPABASE_JWT_SECRET or SUPABASE_URL/)
})
