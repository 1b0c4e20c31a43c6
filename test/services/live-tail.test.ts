// The live tail against the stateful fake n8n (nock) and real Postgres: call budget when idle, a
// burst over several pages, a run hidden while running and finishing below the frontier, n8n down
// then up, two replicas sharing one database (one leader, takeover, fencing), and the tail running
// together with /sync and /sync/all without double counting.
import { randomUUID } from 'node:crypto'
import nock from 'nock'
import t from 'tap'
import type { Test } from 'tap'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { LiveTail } from '../../src/sync/live-tail.ts'
import type { LiveTailOptions, TailTickInfo } from '../../src/sync/live-tail.ts'
import { N8nClient } from '../../src/services/n8n-client.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import { PostgresStore } from '../../src/store/postgres-store.ts'
import { serviceScope, userScope } from '../../src/store/scope.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { FakeN8n, N8N_BASE } from '../helpers/sync-fake-n8n.ts'
import type { Call } from '../helpers/sync-fake-n8n.ts'

const tdb = await createTestDatabase('ws_tail')
const db = tdb.db
nock.disableNetConnect()
t.teardown(async () => {
  nock.cleanAll()
  nock.enableNetConnect()
  await tdb.drop()
})

// ---- fixtures ---------------------------------------------------------------

type Counts = { execution_count: number, successful_executions: number, failed_executions: number }
interface Wf { id: string, n8nId: string, userId: string }

let wfCounter = 0
/** A row and its n8n workflow, which carries the row's marker and the owner's prefix (unless `marker: false`). */
async function newWorkflow (fake: FakeN8n, userId: string = randomUUID(), opts: { marker?: boolean } = {}): Promise<Wf> {
  const n8nId = `tw${++wfCounter}${randomUUID().slice(0, 6)}`
  const res = await db.query<{ id: string }>(
    `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id)
     values ($1, $2, 'deployed', false, $3) returning id`, [userId, `flow ${wfCounter}`, n8nId])
  const id = res.rows[0]?.id
  if (!id) throw new Error('insert failed')
  fake.addWorkflow(n8nId, `[USR-${userId.replace(/-/g, '').slice(0, 8)}] flow ${wfCounter}`, false,
    opts.marker === false ? null : { workflow_sync: { row_id: id, user_id: userId } })
  return { id, n8nId, userId }
}

async function counts (wfId: string): Promise<Counts> {
  const r = await db.query<Counts>('select execution_count, successful_executions, failed_executions from mvp_workflows where id = $1', [wfId])
  const row = r.rows[0]
  if (!row) throw new Error('no workflow')
  return row
}

async function ledgerDuplicates (): Promise<number> {
  const r = await db.query<{ n: number }>('select (count(*) - count(distinct (workflow_id, n8n_execution_id)))::int as n from workflow_executions')
  return r.rows[0]?.n ?? -1
}

function client (): N8nClient {
  return new N8nClient({ baseUrl: N8N_BASE, apiKey: 'test-api-key', retries: 0, retryBaseDelayMs: 1, maxRetryDelayMs: 5, timeoutMs: 500 })
}

const logger = { info () {}, warn (o: object, m?: string) { if (process.env.TAIL_DEBUG) console.error(m, o) }, error (o: object, m?: string) { if (process.env.TAIL_DEBUG) console.error(m, o) } }

function useFake (tt: Test): FakeN8n {
  const fake = new FakeN8n()
  fake.intercept()
  tt.teardown(() => { nock.cleanAll() })
  return fake
}

/** Resets the tail's state between tests (one database for the file). */
async function resetTail (): Promise<void> {
  await db.query('delete from live_tail_state')
  await db.query('delete from workflow_executions')
  await db.query('delete from mvp_workflows')
}

interface Harness {
  tail: LiveTail
  ticks: TailTickInfo[]
  /** Resolves once `n` more ticks have ended (ok or not). */
  nextTicks(n: number): Promise<TailTickInfo[]>
  store: PostgresStore
}

function harness (tt: Test, opts: { store?: PostgresStore, extra?: Partial<LiveTailOptions> } = {}): Harness {
  const store = opts.store ?? new PostgresStore(db)
  const n8n = client()
  const engine = new SyncEngine({ store, n8n, logger, concurrency: 4 })
  const ticks: TailTickInfo[] = []
  const waiters: Array<{ at: number, resolve: () => void }> = []
  const tail = new LiveTail({
    store,
    n8n,
    logger,
    intervalMs: 40,
    standbyMs: 40,
    maxBackoffMs: 200,
    backfill: () => engine.syncAll(),
    random: () => 0.5,
    ...opts.extra,
    onTick: (info) => {
      ticks.push(info)
      for (const w of [...waiters]) {
        if (ticks.length >= w.at) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      opts.extra?.onTick?.(info)
    }
  })
  tt.teardown(() => tail.stop())
  return {
    tail,
    ticks,
    store,
    nextTicks (n) {
      const at = ticks.length + n
      return new Promise((resolve) => { waiters.push({ at, resolve: () => resolve(ticks.slice(at - n, at)) }) })
    }
  }
}

async function until (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const isRunningList = (c: Call) => c.method === 'GET' && c.path === '/executions' && c.query.get('status') === 'running' && c.query.get('workflowId') === null
const isInstanceList = (c: Call) => c.method === 'GET' && c.path === '/executions' && c.query.get('status') === null && c.query.get('workflowId') === null

// ---- tests ------------------------------------------------------------------

t.test('first start backfills history; with nothing new each tick makes exactly two n8n calls and no write', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const a = await newWorkflow(fake)
  const b = await newWorkflow(fake)
  fake.runMany(a.n8nId, 30, (i) => (i % 3 === 0 ? 'error' : 'success'))
  fake.runMany(b.n8nId, 5, 'success')
  const h = harness(tt)
  h.tail.start()
  await until('backfill and tailing', () => h.tail.status().state === 'tailing')
  tt.same(await counts(a.id), fake.truth(a.n8nId), 'history of a counted by the backfill')
  tt.same(await counts(b.id), fake.truth(b.n8nId))
  tt.equal(h.tail.status().role, 'leader')

  await h.nextTicks(2) // the frontier settles
  const versions = async () => (await db.query<{ v: string }>("select string_agg(xmin::text, ',' order by id) as v from mvp_workflows")).rows[0]?.v
  const before = await versions()
  const stateBefore = (await db.query<{ xmin: string }>('select xmin::text from live_tail_state')).rows[0]?.xmin
  await h.nextTicks(1)
  fake.resetCalls() // right after a tick ended: the next one starts an interval later
  const ticks = await h.nextTicks(5)
  const calls = [...fake.calls]
  tt.equal(ticks.length, 5)
  tt.ok(ticks.every((x) => x.ok && x.n8nCalls === 2 && x.ingested === 0), 'each tick: two n8n calls, nothing ingested')
  tt.equal(calls.length, 10, 'ten n8n calls in five ticks')
  tt.ok(calls.every((c) => isRunningList(c) || isInstanceList(c)), 'only the running list and the newest page of the instance list')
  tt.ok(calls.every((c, i) => (i % 2 === 0 ? isRunningList(c) : isInstanceList(c))), 'running list first, then the list')
  tt.equal(await versions(), before, 'no workflow row written')
  tt.equal((await db.query<{ xmin: string }>('select xmin::text from live_tail_state')).rows[0]?.xmin, stateBefore, 'no state write within the fence-check period')
})

t.test('a burst over several pages is counted exactly once, executions of workflows no row owns are ignored', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const wfs = [await newWorkflow(fake), await newWorkflow(fake), await newWorkflow(fake)]
  fake.addWorkflow('foreign1', 'someone else\'s')
  const h = harness(tt)
  h.tail.start()
  await until('tailing', () => h.tail.status().state === 'tailing')
  // 900 executions (4 pages) between two ticks, interleaved with a foreign workflow's.
  for (let i = 0; i < 900; i++) {
    const w = wfs[i % 3]!
    fake.start(i % 10 === 0 ? 'foreign1' : w.n8nId, i % 7 === 0 ? 'error' : 'success')
  }
  const ticks: TailTickInfo[] = []
  await until('counts caught up', async () => {
    ticks.push(...h.ticks.splice(0))
    const all = await Promise.all(wfs.map(async (w) => JSON.stringify(await counts(w.id)) === JSON.stringify(fake.truth(w.n8nId))))
    return all.every(Boolean)
  })
  await h.nextTicks(2)
  ticks.push(...h.ticks.splice(0))
  for (const w of wfs) tt.same(await counts(w.id), fake.truth(w.n8nId), 'counts equal n8n\'s truth')
  tt.ok(ticks.some((x) => x.n8nCalls >= 5), 'one tick read the four pages (running list + 4 list pages)')
  tt.equal(await ledgerDuplicates(), 0, 'no duplicate ledger rows')
  const foreign = await db.query<{ n: number }>("select count(*)::int as n from workflow_executions where n8n_workflow_id = 'foreign1'")
  tt.equal(foreign.rows[0]?.n, 0, 'nothing of the foreign workflow in the ledger')
})

t.test('executions of an n8n workflow that is not the row\'s own (no marker) are not counted', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const mine = await newWorkflow(fake)
  const stray = await newWorkflow(fake, randomUUID(), { marker: false })
  const h = harness(tt)
  h.tail.start()
  await until('tailing', () => h.tail.status().state === 'tailing')
  fake.runMany(mine.n8nId, 4, 'success')
  fake.runMany(stray.n8nId, 6, 'success')
  await until('mine counted', async () => (await counts(mine.id)).execution_count === 4)
  await h.nextTicks(3)
  tt.same(await counts(mine.id), fake.truth(mine.n8nId))
  tt.same(await counts(stray.id), { execution_count: 0, successful_executions: 0, failed_executions: 0 }, 'the row whose n8n workflow lacks its marker counts nothing')
  const rows = await db.query<{ n: number }>('select count(*)::int as n from workflow_executions where workflow_id = $1', [stray.id])
  tt.equal(rows.rows[0]?.n, 0, 'and has no ledger rows')
})

t.test('a run hidden while running is counted once when it finishes, also below the frontier', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const w = await newWorkflow(fake)
  const h = harness(tt)
  h.tail.start()
  await until('tailing', () => h.tail.status().state === 'tailing')
  const hidden = fake.start(w.n8nId, 'running') // active: only in the running list
  await until('open row recorded', async () => (await db.query("select 1 from workflow_executions where n8n_execution_id = $1 and status = 'running'", [String(hidden)])).rowCount === 1)
  tt.same(await counts(w.id), { execution_count: 0, successful_executions: 0, failed_executions: 0 }, 'a running run counts nowhere')
  // Newer runs finish and the frontier passes the hidden one.
  fake.runMany(w.n8nId, 3, 'success')
  await until('frontier above the hidden run', () => BigInt(h.tail.status().frontier ?? '0') > BigInt(hidden))
  await h.nextTicks(2)
  tt.same(await counts(w.id), { execution_count: 3, successful_executions: 3, failed_executions: 0 })
  fake.resetCalls()
  fake.finish(hidden, 'error')
  await until('hidden run counted', async () => (await counts(w.id)).execution_count === 4)
  tt.ok(fake.calls.some((c) => c.path === `/executions/${hidden}`), 'asked for by id once it left the running list')
  await h.nextTicks(3)
  tt.same(await counts(w.id), { execution_count: 4, successful_executions: 3, failed_executions: 1 }, 'counted exactly once')
  tt.same(await counts(w.id), fake.truth(w.n8nId))
  fake.resetCalls()
  await h.nextTicks(3)
  tt.notOk(fake.calls.some((c) => c.path.startsWith('/executions/')), 'a final run is no longer asked for')
})

t.test('n8n down: the tail backs off and reports it; when n8n is back it catches up exactly', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const w = await newWorkflow(fake)
  const h = harness(tt)
  h.tail.start()
  await until('tailing', () => h.tail.status().state === 'tailing')
  fake.faults.push({ match: () => true, reply: () => [503, { message: 'down' }] })
  fake.runMany(w.n8nId, 20, 'success')
  await until('backoff', () => h.tail.status().state === 'backoff' && h.tail.status().consecutive_errors >= 1)
  tt.equal(h.tail.status().retry_in_ms, 60, 'first failure: 80 ms step, jitter 0.75')
  const st = h.tail.status()
  tt.equal(st.role, 'leader', 'still the leader')
  tt.equal(st.last_error, 'n8n_unavailable')
  tt.ok(h.ticks.some((x) => !x.ok), 'failed ticks reported')
  // Backoff: interval 40 ms doubling per failure, capped at 200 ms, equal jitter (random = 0.5).
  await until('capped', () => h.tail.status().consecutive_errors >= 4)
  tt.equal(h.tail.status().retry_in_ms, 150, 'the wait is capped (200 ms with jitter 0.75)')
  tt.same(await counts(w.id), { execution_count: 0, successful_executions: 0, failed_executions: 0 }, 'nothing while n8n is down')
  fake.faults.length = 0
  await until('caught up', async () => (await counts(w.id)).execution_count === 20)
  await until('tailing again', () => h.tail.status().state === 'tailing' && h.tail.status().consecutive_errors === 0)
  tt.same(await counts(w.id), fake.truth(w.n8nId))
})

t.test('two replicas on one database: one tails; when it dies the other takes over; a fenced leader cannot write', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const w = await newWorkflow(fake)
  // Replica A gets its own pools (its own sessions), so that killing its connections drops its lock.
  const appName = `replica-a-${randomUUID().slice(0, 8)}`
  const dbA = new PgDatabase({ connectionString: tdb.url, max: 4, applicationName: appName })
  tt.teardown(() => dbA.close().catch(() => {}))
  const a = harness(tt, { store: new PostgresStore(dbA) })
  const b = harness(tt, { store: new PostgresStore(db) })
  let samples = 0
  let overlap = 0
  const sampler = setInterval(() => {
    samples++
    if (a.tail.status().role === 'leader' && b.tail.status().role === 'leader') overlap++
  }, 5)
  tt.teardown(() => clearInterval(sampler))
  a.tail.start()
  await until('A leads', () => a.tail.status().state === 'tailing')
  b.tail.start()
  await until('B stands by', () => b.tail.status().role === 'standby')
  fake.runMany(w.n8nId, 10, 'success')
  await until('A ingests', async () => (await counts(w.id)).execution_count === 10)
  await a.nextTicks(3)
  clearInterval(sampler)
  tt.ok(samples > 10, 'sampled')
  tt.equal(overlap, 0, 'never two leaders while both run')
  tt.equal(b.ticks.length, 0, 'the standby never ticked')
  const epochA = a.tail.status().epoch ?? ''

  // A dies: the server loses its sessions (as when the process is killed), the lock with them.
  await db.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name like $1', [`${appName}%`])
  const stopping = a.tail.stop() // what is left of A ends (a dead process would do nothing more)
  await until('B leads', () => b.tail.status().state === 'tailing')
  await stopping
  fake.runMany(w.n8nId, 7, 'error')
  await until('B ingests', async () => (await counts(w.id)).execution_count === 17)
  tt.same(await counts(w.id), fake.truth(w.n8nId), 'counts exact after the takeover')
  const epochB = b.tail.status().epoch ?? ''
  tt.ok(BigInt(epochB) > BigInt(epochA), 'the new leader has a newer epoch')
  tt.equal(a.tail.status().role, 'off')

  // Fencing: someone claims the tail behind B's back (as after a partition); a write with B's
  // epoch is refused, B steps down at its next write, then takes the lock again under a new epoch.
  const other = new PostgresStore(db)
  await other.liveTailClaim(serviceScope, 'intruder')
  await tt.rejects(other.liveTailIngest(serviceScope, epochB, { items: [], vanished: [], state: {} }, new Date()), { code: 'conflict' }, 'a stale epoch is refused')
  fake.runMany(w.n8nId, 2, 'success')
  await until('B re-claimed', () => b.tail.status().state === 'tailing' && b.tail.status().epoch !== epochB)
  await until('B ingests again', async () => (await counts(w.id)).execution_count === 19)
  tt.same(await counts(w.id), fake.truth(w.n8nId))
  tt.equal(await ledgerDuplicates(), 0)
})

t.test('the tail together with /sync and /sync/all never double-counts', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  const userId = randomUUID()
  const wfs = [await newWorkflow(fake, userId), await newWorkflow(fake, userId), await newWorkflow(fake)]
  const h = harness(tt)
  const engine = new SyncEngine({ store: new PostgresStore(db), n8n: client(), logger, concurrency: 4 })
  h.tail.start()
  await until('tailing', () => h.tail.status().state === 'tailing')
  const hidden: number[] = []
  for (let round = 0; round < 6; round++) {
    for (const w of wfs) fake.runMany(w.n8nId, 40, (i) => (i % 5 === 0 ? 'error' : 'success'))
    hidden.push(fake.start(wfs[round % 3]!.n8nId, 'running'))
    if (round > 0) fake.finish(hidden[round - 1]!, 'success')
    await Promise.all([
      engine.syncAll(),
      engine.syncUser(userScope({ sub: userId, role: 'authenticated' })),
      h.nextTicks(1)
    ])
  }
  fake.finish(hidden.at(-1)!, 'crashed')
  await until('all counted', async () => {
    const all = await Promise.all(wfs.map(async (w) => JSON.stringify(await counts(w.id)) === JSON.stringify(fake.truth(w.n8nId))))
    return all.every(Boolean)
  })
  await Promise.all([engine.syncAll(), h.nextTicks(2)])
  for (const w of wfs) tt.same(await counts(w.id), fake.truth(w.n8nId), 'exact')
  tt.equal(await ledgerDuplicates(), 0)
})

t.test('stop() ends the loop and releases the lock; no timer is left', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  await newWorkflow(fake)
  const a = harness(tt)
  a.tail.start()
  await until('leading', () => a.tail.status().state === 'tailing')
  await a.tail.stop()
  tt.equal(a.tail.status().role, 'off')
  const b = harness(tt)
  b.tail.start()
  await until('the other one leads at once', () => b.tail.status().state === 'tailing', 3000)
  await b.tail.stop()
})

t.test('housekeeping on the leader: cleanup on its schedule (kept across leaders), pending deploys retried with backoff', async (tt) => {
  await resetTail()
  const fake = useFake(tt)
  await newWorkflow(fake)
  let cleanups = 0
  const redeploys: string[] = []
  const cleanup = { everyMs: 3_600_000, run: async () => { cleanups++ } }
  // Rows left pending: wf-a deploys at its first retry; wf-b stays pending once (n8n still down), then deploys.
  const stillPending = new Set(['wf-a', 'wf-b'])
  const pending = {
    everyMs: 20,
    list: async () => [...stillPending],
    redeploy: async (id: string) => {
      redeploys.push(id)
      if (id === 'wf-b' && redeploys.filter((x) => x === 'wf-b').length === 1) return 'pending'
      stillPending.delete(id)
      return 'deployed'
    }
  }
  const a = harness(tt, { extra: { cleanup, pending } })
  a.tail.start()
  await until('cleanup ran', () => cleanups === 1)
  await until('wf-b retried after its backoff', () => redeploys.filter((x) => x === 'wf-b').length === 2)
  const stored = (await db.query<{ stored: boolean }>('select cleanup_at is not null as stored from live_tail_state')).rows[0]?.stored
  tt.equal(stored, true, 'the cleanup time is stored with the tail state')
  await a.nextTicks(3)
  tt.equal(cleanups, 1, 'not again within its interval')
  await a.tail.stop()
  // A new leader keeps the schedule: no cleanup at its start.
  const b = harness(tt, { extra: { cleanup } })
  b.tail.start()
  await until('b leads', () => b.tail.status().state === 'tailing')
  await b.nextTicks(3)
  tt.equal(cleanups, 1, 'the next leader does not clean up again before the interval')
  tt.same(redeploys.filter((x) => x === 'wf-a'), ['wf-a'], 'wf-a retried once')
  tt.equal(redeploys.filter((x) => x === 'wf-b').length, 2, 'wf-b retried until deployed')
  tt.same([...stillPending], [])
})
