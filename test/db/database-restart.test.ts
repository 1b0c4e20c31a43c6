// Postgres stops under the running app and starts again (issue 9): a cluster of this file's own
// (never the shared 5432 server). While it is down the process stays alive and answers 503
// problem+json `database_unavailable` (a user route, a write, /ready); when it is back the same
// process serves again, a held advisory lock is taken again, and an open /events stream receives
// what happened after the restart. The clients held across the stop are the ones whose missing
// 'error' listener used to kill the process: a lock session, a transaction idle between queries,
// the LISTEN connection. And while it is down, callers fail at once instead of queueing in the
// pool behind connect attempts that each fail (src/db/connect-latch.ts).
import t from 'tap'
import type { Test } from 'tap'
import nock from 'nock'
import pg from 'pg'
import { buildApp } from '../../src/app.ts'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { testConfig, testUser } from '../helpers/app.ts'
import { createPrivateCluster } from '../helpers/private-cluster.ts'
import { openSse, waitFor } from '../helpers/sse.ts'

// initdb / redis-server and the restarts are slow on a busy shared machine: a longer bound than the default 60 s
t.setTimeout(240_000)

nock.disableNetConnect()
nock.enableNetConnect(/^127\.0\.0\.1(:\d+)?$/)

let base = ''
let u: Awaited<ReturnType<typeof testUser>>

async function get (path: string, headers: Record<string, string> = u.auth): Promise<{ status: number, type: string, body: Record<string, unknown> }> {
  const res = await fetch(base + path, { headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() as Record<string, unknown> }
}

async function create (name: string): Promise<{ status: number, type: string, body: Record<string, unknown> }> {
  const res = await fetch(base + '/workflows', { method: 'POST', headers: { ...u.auth, 'content-type': 'application/json' }, body: JSON.stringify({ name, nodes: [] }) })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.json() as Record<string, unknown> }
}

function assertUnavailable (t: Test, res: { status: number, type: string, body: Record<string, unknown> }, what: string): void {
  t.equal(res.status, 503, `${what}: 503`)
  t.match(res.type, /^application\/problem\+json/, `${what}: problem+json`)
  t.equal(res.body.code, 'database_unavailable', `${what}: code database_unavailable`)
  t.notMatch(JSON.stringify(res.body), /stack|node_modules|select |57P01/i, `${what}: no internals`)
}

t.test('Postgres stops and starts under the running app', async (t) => {
  const cluster = await createPrivateCluster()
  t.teardown(() => cluster.destroy())
  await cluster.sql('create database app')

  const app = await buildApp({
    config: testConfig({ DATABASE_URL: cluster.url('app'), DATABASE_CONNECT_TIMEOUT_MS: '1000' }),
    logger: false
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
  const db = app.db as PgDatabase
  u = await testUser()

  const before = await create('before the restart')
  t.equal(before.status, 201, 'a write before the stop')
  t.equal((await get('/workflows')).status, 200, 'a read before the stop (its answer is now in the list cache)')
  const stream = await openSse(base, u.auth)
  t.equal(stream.status, 200, '/events stream open')
  await waitFor(() => stream.events.some((e) => e.event === 'ready'), 10_000, 'the stream sent ready')
  await waitFor(() => app.events.listening, 10_000, 'the hub listens')

  // Held across the stop: a lock session (work running under it) and a transaction between queries.
  let releaseWork!: () => void
  const workGate = new Promise<void>((resolve) => { releaseWork = resolve })
  const locked = db.withAdvisoryLock(42, 'restart-test', async () => { await workGate; return 'work done' })
  const heldTx = db.asService(async (tx) => {
    await tx.query('select 1')
    await workGate
    await tx.query('select 2')
  }).then(() => 'committed', (err: unknown) => (err as { code?: string }).code ?? 'error')
  await waitFor(async () => {
    const c = new pg.Client({ connectionString: cluster.url('app') })
    await c.connect()
    try {
      const r = await c.query<{ n: number }>("select count(*)::int as n from pg_locks where locktype = 'advisory' and granted")
      return r.rows[0]!.n === 1
    } finally {
      await c.end()
    }
  }, 10_000, 'the advisory lock is held')

  await cluster.stop('fast')

  await t.test('while the database is down', async (t) => {
    t.equal((await get('/health', {})).status, 200, 'the process is alive (/health 200)')
    assertUnavailable(t, await get('/workflows'), 'GET /workflows')
    assertUnavailable(t, await get(`/workflows/${String(before.body.id)}`), 'GET /workflows/:id')
    assertUnavailable(t, await create('while down'), 'POST /workflows')
    const ready = await get('/ready', {})
    t.equal(ready.status, 503, '/ready 503')
    t.equal(ready.body.status, 'unavailable', '/ready status unavailable')
    t.match(ready.body.database, { ok: false, status: 'down' }, '/ready names the database as the part that is down')
    const events = await fetch(base + '/events', { headers: u.auth })
    t.equal(events.status, 503, 'a new /events stream: 503 while the database is down')
    await events.body?.cancel()
    await waitFor(() => !app.events.listening, 10_000, 'the hub noticed the LISTEN connection is gone')
    t.ok(db.lost.clients > 0, `connection losses were handled (${db.lost.clients} clients)`)
  })

  await t.test('after it is back', async (t) => {
    await cluster.start()
    await waitFor(async () => (await get('/ready', {})).status === 200, 30_000, '/ready 200 again')
    const list = await get('/workflows')
    t.equal(list.status, 200, 'GET /workflows 200 without a restart of the app')
    const after = await create('after the restart')
    t.equal(after.status, 201, 'a write after the restart')
    await waitFor(() => db.lost.lockReacquired >= 1, 30_000, 'the advisory lock was taken again')
    const other = new pg.Client({ connectionString: cluster.url('app') })
    await other.connect()
    const taken = await other.query<{ ok: boolean }>('select pg_try_advisory_lock(42, hashtext($1)) as ok', ['restart-test'])
    t.equal(taken.rows[0]!.ok, false, 'another session cannot take the lock while the work still runs')
    releaseWork()
    t.equal(await locked.then((r) => r.acquired && r.value), 'work done', 'the work under the lock finished')
    const freed = await other.query<{ ok: boolean }>('select pg_try_advisory_lock(42, hashtext($1)) as ok', ['restart-test'])
    t.equal(freed.rows[0]!.ok, true, 'the lock is free once the work is over')
    await other.end()
    t.equal(await heldTx, 'database_unavailable', 'the transaction cut by the restart failed as database_unavailable')

    await waitFor(() => stream.events.some((e) => e.event === 'overflow' || e.event === 'reset' || (e.event === 'workflow.insert' && e.data.includes(String(after.body.id)))), 30_000,
      'the open stream received the insert made after the restart (or was told to reload)')
    t.ok(app.events.stats.listenerReconnects >= 1, 'the LISTEN connection was opened again')
    const ids = stream.events.filter((e) => e.id).map((e) => Number(e.id))
    t.same(ids, [...ids].sort((a, b) => a - b), 'event ids stay in order across the restart')
    t.equal(new Set(ids).size, ids.length, 'no event twice')
    stream.close()
  })

  await t.test('an immediate stop (a crash) is survived the same way', async (t) => {
    await cluster.stop('immediate')
    assertUnavailable(t, await get('/workflows'), 'GET /workflows after a crash')
    t.equal((await get('/ready', {})).status, 503, '/ready 503')
    await cluster.start()
    await waitFor(async () => (await get('/ready', {})).status === 200, 30_000, '/ready 200 again')
    t.equal((await get('/workflows')).status, 200, 'serves again')
  })

  await t.test('while it is down, callers fail at once instead of waiting for connect attempts', async (t) => {
    const codeOf = (err: unknown): string => (err as { code?: string }).code ?? 'error'
    // Every pool connect that reaches the network, of the Databases made here (named by
    // application_name; the latch's probes are not pool connects).
    let connects = 0
    const original = pg.Client.prototype.connect
    pg.Client.prototype.connect = function (this: pg.Client, ...args: unknown[]) {
      const name = (this as unknown as { connectionParameters: { application_name?: string } }).connectionParameters.application_name ?? ''
      if (name === 'fail-fast' || name === 'fail-fast:locks') connects++
      return (original as (...a: unknown[]) => unknown).apply(this, args)
    } as typeof original
    t.teardown(() => { pg.Client.prototype.connect = original })
    // A connect timeout far beyond the bounds below: a caller left to wait for it fails the test.
    const opts = { connectionString: cluster.url('app'), max: 3, connectionTimeoutMillis: 60_000, applicationName: 'fail-fast' }
    const db = new PgDatabase(opts)
    t.teardown(() => db.close())

    // every slot held by a transaction that waits on something else, and 20 callers queued behind them
    let releaseHolders!: () => void
    const holdersGate = new Promise<void>((resolve) => { releaseHolders = resolve })
    let holding = 0
    let holdersSettled = 0
    const holders = Array.from({ length: 3 }, () => db.asService(async (tx) => {
      await tx.query('select 1')
      holding++
      await holdersGate
      await tx.query('select 2')
    }).then(() => 'committed', codeOf).finally(() => { holdersSettled++ }))
    await waitFor(() => holding === 3, 10_000, 'three transactions hold every slot')
    const released: unknown[] = []
    const queued = Array.from({ length: 20 }, () => db.query('select 1').then(() => 'served', (err: unknown) => { released.push(err); return codeOf(err) }))
    await waitFor(() => db.poolStats().waiting === 20, 10_000, 'twenty queries wait for a slot')
    const connectsBeforeStop = connects

    await cluster.stop('fast')
    await waitFor(() => released.length === 20, 20_000, 'the queued queries were released')
    t.same(await Promise.all(queued), Array(20).fill('database_unavailable'), 'every queued query: database_unavailable')
    t.equal(holdersSettled, 0, 'released while every slot was still held (not by a freed slot)')
    t.notOk(released.some((err) => /timeout/i.test(String((err as { cause?: { message?: string } }).cause?.message))), 'not by the pool\'s connect timeout')
    t.equal(connects, connectsBeforeStop, 'no connect attempt was made for them')

    // the latch is closed now: new callers of every kind fail without a connect attempt
    const claims = { sub: u.id, role: 'authenticated' as const }
    const before = connects
    const burst = await Promise.all([
      ...Array.from({ length: 20 }, () => db.query('select 1')),
      ...Array.from({ length: 5 }, () => db.readAsUser(claims, 'select 1')),
      ...Array.from({ length: 5 }, () => db.withUser(claims, async (tx) => tx.query('select 1'))),
      db.asService(async (tx) => tx.query('select 1')),
      db.withAdvisoryLock(7, 'fail-fast', async () => 'locked'),
      db.listen('fail_fast', () => {}, () => {}),
      db.execScript('select 1')
    ].map(async (p) => p.then(() => 'served', codeOf)))
    t.equal(burst.length, 34, '34 callers')
    t.same(burst, Array(34).fill('database_unavailable'), 'every one: database_unavailable')
    t.equal(connects, before, 'without a single connect attempt')

    // a Database that never connected, started while the server is down: its first failures close
    // the latch, the callers queued behind those attempts make none of their own
    const cold = new PgDatabase(opts)
    t.teardown(() => cold.close())
    const coldStart = connects
    const coldCodes = await Promise.all(Array.from({ length: 20 }, async () => cold.query('select 1').then(() => 'served', codeOf)))
    t.same(coldCodes, Array(20).fill('database_unavailable'), 'a cold pool: every query database_unavailable')
    t.ok(connects - coldStart <= opts.max, `at most one connect attempt per pool slot for 20 queries (${connects - coldStart})`)

    releaseHolders()
    t.same(await Promise.all(holders), Array(3).fill('database_unavailable'), 'the transactions cut by the stop failed as database_unavailable')

    await cluster.start()
    await waitFor(async () => { await db.query('select 1'); return true }, 30_000, 'the same Database serves again')
    t.same((await db.asService(async (tx) => tx.query<{ n: number }>('select 2 as n'))).rows, [{ n: 2 }], 'a transaction after the start')
    t.equal((await db.withAdvisoryLock(7, 'fail-fast', async () => 'locked')).acquired, true, 'an advisory lock after the start')
    await waitFor(async () => { await cold.query('select 1'); return true }, 30_000, 'the cold Database serves too')
  })
})
