// Issue 11, item 7: a second start on the same port or PGLITE_DIR says "already running on …" in
// one line, exits non-zero, and never opens the embedded database.
import { createServer } from 'node:net'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { exitOf, startServer } from './helpers/server-process.ts'

t.setTimeout(300_000)

async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise((resolve) => srv.close(resolve))
  return port
}

function assertOneLine (t: Test, out: string, pattern: RegExp): void {
  const lines = out.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${out}`)
  t.match(lines[0], pattern)
  t.notMatch(out, /"level"|\bat .+\.ts:\d+|stack/, 'no JSON log line, no stack')
  t.notMatch(out, /database ready|migrat/i, 'the embedded database was not opened')
}

t.test('same port and PGLITE_DIR, then same PGLITE_DIR on another port', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-second-start-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const env = { PORT: String(port), PGLITE_DIR: join(dir, 'pglite') }
  const first = await startServer(t, env)
  t.equal(first.port, String(port), first.out.slice(-300))
  t.ok(existsSync(join(dir, 'pglite', '.workflow-sync.lock')), 'the folder is locked')

  const second = await startServer(t, env, { until: /\n/ })
  t.equal(await exitOf(second), 1, 'exits non-zero')
  assertOneLine(t, second.out, new RegExp(`^workflow-sync is already running on http://127\\.0\\.0\\.1:${port} `))

  const other = await startServer(t, { ...env, PORT: String(await freePort()) }, { until: /\n/ })
  t.equal(await exitOf(other), 1)
  assertOneLine(t, other.out, /^workflow-sync is already running with PGLITE_DIR=.*\(pid \d+\)/)

  // The first one is unharmed.
  t.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200)
  t.equal(await first.stop(), 0)
  t.notOk(existsSync(join(dir, 'pglite', '.workflow-sync.lock')), 'the lock is released at exit')
})

t.test('a port held by another program: says so in one line', async (t) => {
  const port = await freePort()
  const sockets = new Set<import('node:net').Socket>()
  const srv = createServer((s) => { sockets.add(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => { srv.close(() => resolve()) })
  })
  const p = await startServer(t, { PORT: String(port), PGLITE_DIR: 'memory' }, { until: /\n/ })
  t.equal(await exitOf(p), 1)
  assertOneLine(t, p.out, new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use by another program`))
})
