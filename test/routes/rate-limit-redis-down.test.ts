// The rate limiter's Redis goes away under the running app (issue 9, chaos scenario 5): requests
// keep being served, limits degrade to per-process counts (not to no limit at all), and the app
// counts in Redis again by itself once it is back. A redis-server of this file's own on a free
// port: the shared 6379 is never stopped.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import t from 'tap'
import { Redis } from 'ioredis'
import { buildTestApp, testUser } from '../helpers/app.ts'
import { freePort } from '../helpers/private-cluster.ts'
import { waitFor } from '../helpers/sse.ts'

// initdb / redis-server and the restarts are slow on a busy shared machine: a longer bound than the default 60 s
t.setTimeout(240_000)

async function startRedis (port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 })
  probe.on('error', () => {})
  await waitFor(async () => { if (probe.status !== 'ready') await probe.connect().catch(() => {}); return (await probe.ping()) === 'PONG' }, 10_000, 'redis-server answers')
  probe.disconnect()
  return child
}

async function stopRedis (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

t.test('Redis stops and starts under the running app', async (t) => {
  const port = await freePort()
  let redis = await startRedis(port)
  t.teardown(() => stopRedis(redis))
  const h = await buildTestApp({ env: { RATE_LIMIT_MAX: '4', REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TIMEOUT_MS: '200' } })
  t.teardown(() => h.close())
  const watcher = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 100, enableOfflineQueue: false })
  watcher.on('error', () => {})
  t.teardown(() => { watcher.disconnect() })
  // without an offline queue a command before the connection is up fails: wait for it (a busy machine)
  if (watcher.status !== 'ready') await new Promise((resolve) => watcher.once('ready', resolve))
  const burst = async (): Promise<number[]> => {
    const u = await testUser()
    const codes: number[] = []
    for (let i = 0; i < 6; i++) codes.push((await h.app.inject({ method: 'GET', url: '/me', headers: u.auth })).statusCode)
    return codes
  }

  t.same(await burst(), [200, 200, 200, 200, 429, 429], 'with Redis: the limit holds')
  t.ok((await watcher.keys('workflow-sync:rl:*')).length > 0, 'the counts are in Redis')

  await stopRedis(redis)
  t.same(await burst(), [200, 200, 200, 200, 429, 429], 'Redis away: served, and the limit still holds per process (no 500, no wait)')

  redis = await startRedis(port)
  await waitFor(async () => {
    await burst()
    return (await watcher.keys('workflow-sync:rl:*')).length > 0
  }, 30_000, 'the app counts in Redis again by itself')
  t.same(await burst(), [200, 200, 200, 200, 429, 429], 'Redis back: the shared limit holds')
})
