// Graceful shutdown of the real process (`node src/server.ts`): SIGTERM while a request is in
// flight (its n8n call takes ~1 s at a local slow fake) lets it finish with its normal answer,
// refuses new connections, and exits 0 without waiting for keep-alive timeouts; a connection
// that never finishes is cut at SHUTDOWN_TIMEOUT_MS.
import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestDatabase } from './helpers/db.ts'
import type { TestDatabase } from './helpers/db.ts'
import { testUser } from './helpers/app.ts'
import { TEST_JWT_SECRET } from './helpers/tokens.ts'

const SERVER = new URL('../src/server.ts', import.meta.url).pathname
const N8N_DELAY_MS = 1000
const N8N_KEY = 'n8n-key-for-the-shutdown-test'

let tdb: TestDatabase
t.before(async () => { tdb = await createTestDatabase() })
t.teardown(async () => { await tdb?.drop() })

// ---------------------------------------------------------------------------
// A slow n8n: POST /workflows answers after N8N_DELAY_MS (never when the name contains "hang").

interface SlowN8n {
  url: string
  /** Resolves when the next create request has arrived. */
  nextCreate (): Promise<{ name: string }>
  close (): Promise<void>
}

async function startSlowN8n (): Promise<SlowN8n> {
  let waiting: Array<(b: { name: string }) => void> = []
  let seq = 0
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      if (req.headers['x-n8n-api-key'] !== N8N_KEY) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"unauthorized"}')
        return
      }
      const url = new URL(req.url ?? '/', 'http://n8n')
      if (req.method === 'POST' && url.pathname === '/api/v1/workflows') {
        const def = JSON.parse(body) as { name: string, nodes: unknown[], connections: unknown, settings: unknown }
        for (const w of waiting) w(def)
        waiting = []
        if (def.name.includes('hang')) return
        setTimeout(() => {
          const now = new Date().toISOString()
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
            id: `slow-${++seq}`,
            name: def.name,
            active: false,
            nodes: def.nodes,
            connections: def.connections,
            settings: def.settings,
            staticData: null,
            createdAt: now,
            updatedAt: now
          }))
        }, N8N_DELAY_MS)
        return
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/workflows') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[],"nextCursor":null}')
        return
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/api/v1`,
    nextCreate: () => new Promise((resolve) => { waiting.push(resolve) }),
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

// ---------------------------------------------------------------------------
// The real server process.

interface Proc {
  child: ChildProcess
  port: number
  logs: Array<Record<string, unknown>>
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
}

async function startServer (env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, [SERVER], {
    // Only what the server needs: nothing of the test runner's environment (NODE_OPTIONS...).
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      DATABASE_URL: tdb.url,
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      N8N_API_KEY: N8N_KEY,
      N8N_TIMEOUT_MS: '30000',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const logs: Array<Record<string, unknown>> = []
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      logs.push(entry)
      const m = /^Server listening at http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(entry.msg))
      if (m) resolve(Number(m[1]))
    })
    void exited.then(({ code }) => reject(new Error(`the server exited (${code}) before listening: ${stderr}`)))
    setTimeout(() => reject(new Error(`the server did not listen within 20 s: ${stderr}`)), 20_000).unref()
  })
  return { child, port, logs, stderr: () => stderr, exited }
}

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string, at: number }

function request (port: number, agent: http.Agent, opts: { method: string, path: string, headers?: Record<string, string>, body?: unknown }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: opts.method,
      path: opts.path,
      agent,
      headers: { ...opts.headers, ...(payload ? { 'content-type': 'application/json' } : {}) }
    }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, at: performance.now() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** 'refused' once the listening socket is gone; 'accepted' while it still takes connections. */
function tryConnect (port: number): Promise<'refused' | 'accepted' | string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve('accepted') })
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : err.code ?? err.message))
  })
}

function killOnTeardown (t: Test, p: Proc): void {
  t.teardown(() => { if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL') })
}

// ---------------------------------------------------------------------------

t.test('SIGTERM during a request: it completes, new connections are refused, exit 0 soon after', async (t) => {
  const n8n = await startSlowN8n()
  t.teardown(() => n8n.close())
  const timeoutMs = 5000
  const p = await startServer({ N8N_API_URL: n8n.url, SHUTDOWN_TIMEOUT_MS: String(timeoutMs) })
  killOnTeardown(t, p)
  const user = await testUser()
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())

  // Warm the keep-alive connection the in-flight request will use.
  const health = await request(p.port, agent, { method: 'GET', path: '/health' })
  t.equal(health.status, 200)

  const arrived = n8n.nextCreate()
  const inFlight = request(p.port, agent, { method: 'POST', path: '/workflows', headers: { authorization: `Bearer ${user.token}` }, body: { name: 'in flight at SIGTERM', nodes: [] } })
  const create = await arrived
  t.equal(create.name.endsWith('in flight at SIGTERM'), true, 'the request is in flight (n8n is answering it)')
  const signalledAt = performance.now()
  t.ok(p.child.kill('SIGTERM'), 'SIGTERM sent')

  // New connections are refused while the request is still being answered.
  let refusedAt: number | null = null
  let lastAttempt = ''
  while (performance.now() - signalledAt < 800) {
    lastAttempt = await tryConnect(p.port)
    if (lastAttempt === 'refused') {
      refusedAt = performance.now()
      break
    }
    await sleep(20)
  }
  t.ok(refusedAt !== null, `new connections refused within 800 ms of SIGTERM (last attempt: ${lastAttempt})`)

  const answer = await inFlight
  t.equal(answer.status, 201, `the in-flight request got its normal answer: ${answer.body}`)
  const body = JSON.parse(answer.body) as Record<string, unknown>
  t.equal(body.status, 'deployed', 'deployed to n8n')
  t.match(String(body.n8n_workflow_id), /^slow-\d+$/)
  t.ok(refusedAt! < answer.at, 'refused before the in-flight answer went out')
  t.ok(answer.at - signalledAt >= N8N_DELAY_MS - 200, 'the answer waited for n8n, after SIGTERM')

  const exit = await p.exited
  t.equal(exit.code, 0, `exit code 0 (stderr: ${p.stderr()})`)
  t.equal(exit.signal, null)
  const took = exit.at - signalledAt
  t.ok(took < N8N_DELAY_MS + 1500, `exited ${Math.round(took)} ms after SIGTERM: soon after the last answer, not after a keep-alive timeout`)
  t.ok(took < timeoutMs, 'within SHUTDOWN_TIMEOUT_MS')
  t.comment(`SIGTERM → refused ${Math.round(refusedAt! - signalledAt)} ms, answer ${Math.round(answer.at - signalledAt)} ms, exit ${Math.round(took)} ms`)

  const row = await tdb.db.query<{ status: string, n8n_workflow_id: string }>('select status, n8n_workflow_id from mvp_workflows where id = $1', [body.id])
  t.same(row.rows, [{ status: 'deployed', n8n_workflow_id: body.n8n_workflow_id }], 'the row was committed before the pool closed')
  const msgs = p.logs.map((l) => String(l.msg))
  t.ok(msgs.includes('shutting down'), 'logged "shutting down"')
  t.ok(msgs.includes('shutdown complete'), 'logged "shutdown complete"')
  t.notOk(p.logs.some((l) => Number(l.level) >= 50), 'no error logged')
})

t.test('SIGTERM with an open event stream: the stream ends with `event: shutdown`, exit 0 without waiting for the bound', async (t) => {
  const n8n = await startSlowN8n()
  t.teardown(() => n8n.close())
  const timeoutMs = 5000
  const p = await startServer({ N8N_API_URL: n8n.url, SHUTDOWN_TIMEOUT_MS: String(timeoutMs) })
  killOnTeardown(t, p)
  const user = await testUser()
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())

  let text = ''
  let firstEvent!: () => void
  const gotFirst = new Promise<void>((resolve) => { firstEvent = resolve })
  const ended = new Promise<{ status: number, type: string, at: number }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: p.port, path: '/events', agent, headers: { authorization: `Bearer ${user.token}`, accept: 'text/event-stream' } }, (res) => {
      res.on('data', (c: Buffer) => {
        text += c.toString()
        if (/\n\n/.test(text)) firstEvent()
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), at: performance.now() }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  await gotFirst
  const signalledAt = performance.now()
  p.child.kill('SIGTERM')
  const end = await ended
  t.equal(end.status, 200)
  t.match(end.type, /^text\/event-stream/)
  t.match(text, /event: shutdown\n/, 'the last event says the server is stopping')
  const exit = await p.exited
  t.equal(exit.code, 0, `exit code 0 (stderr: ${p.stderr()})`)
  t.ok(end.at - signalledAt < 1000, `the stream ended ${Math.round(end.at - signalledAt)} ms after SIGTERM`)
  t.ok(exit.at - signalledAt < 1500, `exited ${Math.round(exit.at - signalledAt)} ms after SIGTERM, well before the ${timeoutMs} ms bound`)
  t.notOk(p.logs.some((l) => String(l.msg).startsWith('drain bound reached')), 'nothing had to be cut')
})

t.test('a connection that never finishes is cut at SHUTDOWN_TIMEOUT_MS; exit 0', async (t) => {
  const n8n = await startSlowN8n()
  t.teardown(() => n8n.close())
  const timeoutMs = 1000
  const p = await startServer({ N8N_API_URL: n8n.url, SHUTDOWN_TIMEOUT_MS: String(timeoutMs) })
  killOnTeardown(t, p)
  const user = await testUser()

  // Stands for a stream nobody ends: a request whose body never finishes arriving.
  const socket = net.connect(p.port, '127.0.0.1')
  await once(socket, 'connect')
  const closed = once(socket, 'close').then(() => performance.now())
  socket.on('error', () => {})
  socket.write(`POST /workflows HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":`)
  await sleep(200)

  const signalledAt = performance.now()
  p.child.kill('SIGTERM')
  const closedAt = await closed
  const exit = await p.exited
  t.equal(exit.code, 0, `exit code 0 (stderr: ${p.stderr()})`)
  const cut = closedAt - signalledAt
  t.ok(cut >= timeoutMs - 100 && cut < timeoutMs + 1000, `the open connection was closed at the bound (${Math.round(cut)} ms)`)
  t.ok(exit.at - signalledAt < timeoutMs + 1500, `exited ${Math.round(exit.at - signalledAt)} ms after SIGTERM`)
  t.ok(p.logs.some((l) => String(l.msg).startsWith('drain bound reached')), 'the cut is logged')
})
