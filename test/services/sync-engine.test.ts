import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import nock from 'nock'
import t from 'tap'
import type { Test } from 'tap'
import { N8nClient } from '../../src/services/n8n-client.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import type { SyncEngineOptions, SyncResult } from '../../src/sync/types.ts'
import { SyncHistory } from '../../src/services/sync-history.ts'
import { PostgresStore } from '../../src/store/postgres-store.ts'
import { serviceScope, userScope } from '../../src/store/scope.ts'
import type { Scope } from '../../src/store/scope.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { waitFor } from '../helpers/sse.ts'
import { FakeN8n, N8N_BASE } from '../helpers/sync-fake-n8n.ts'
import type { Call } from '../helpers/sync-fake-n8n.ts'

const tdb = await createTestDatabase('ws_sync')
const db = tdb.db
const store = new PostgresStore(db)
nock.disableNetConnect()
t.teardown(async () => {
  nock.cleanAll()
  nock.enableNetConnect()
  await tdb.drop()
})

// ---- fixtures ---------------------------------------------------------------

interface User { id: string, scope: Scope, tag: string }
interface Wf { id: string, n8nId: string }

function newUser (): User {
  const id = randomUUID()
  return { id, scope: userScope({ sub: id, role: 'authenticated' }), tag: `[USR-${id.replace(/-/g, '').slice(0, 8)}]` }
}

let wfCounter = 0
async function newWorkflow (fake: FakeN8n, u: User, opts: { active?: boolean, n8nActive?: boolean, status?: string } = {}): Promise<Wf> {
  const n8nId = `wf${++wfCounter}${randomUUID().slice(0, 6)}`
  fake.addWorkflow(n8nId, `${u.tag} flow ${wfCounter}`, opts.n8nActive ?? opts.active ?? false)
  const res = await db.query<{ id: string }>(
    `insert into mvp_workflows (user_id, name, status, active, n8n_workflow_id)
     values ($1, $2, $3, $4, $5) returning id`,
    [u.id, `flow ${wfCounter}`, opts.status ?? 'deployed', opts.active ?? false, n8nId])
  const id = res.rows[0]?.id
  if (!id) throw new Error('insert failed')
  // n8n's copy carries the row's marker, as a deploy leaves it: the engine acts only on those.
  const wf = fake.workflows.get(n8nId)
  if (wf) wf.staticData = { workflow_sync: { row_id: id, user_id: u.id } }
  return { id, n8nId }
}

function client (baseUrl = N8N_BASE, extra: { timeoutMs?: number, retries?: number } = {}): N8nClient {
  return new N8nClient({ baseUrl, apiKey: 'test-api-key', retries: extra.retries ?? 1, retryBaseDelayMs: 1, maxRetryDelayMs: 30, timeoutMs: extra.timeoutMs ?? 300 })
}

const internalErrors: unknown[] = []
const logger = { info () {}, warn () {}, error (obj: object) { internalErrors.push(obj) } }

/**
 * Runs fn (a sync with a crash injected on purpose) and answers the unexpected errors it logged,
 * taken out of the collector: the caller asserts them, and the last test still sees every other one.
 */
async function injected<T> (fn: () => Promise<T>): Promise<{ value: T, logged: Array<{ err?: unknown, workflow_id?: string }> }> {
  const mark = internalErrors.length
  const value = await fn()
  return { value, logged: internalErrors.splice(mark) as Array<{ err?: unknown, workflow_id?: string }> }
}

function engine (extra: Partial<SyncEngineOptions> = {}): SyncEngine {
  return new SyncEngine({ store, n8n: client(), logger, concurrency: 4, ...extra })
}

function useFake (tt: Test): FakeN8n {
  const fake = new FakeN8n()
  fake.intercept()
  tt.teardown(() => { nock.cleanAll() })
  return fake
}

type Counts = { execution_count: number, successful_executions: number, failed_executions: number }

async function counts (wfId: string): Promise<Counts> {
  const r = await db.query<Counts>('select execution_count, successful_executions, failed_executions from mvp_workflows where id = $1', [wfId])
  const row = r.rows[0]
  if (!row) throw new Error('no workflow')
  return row
}

/** What the ledger says the counts are (by each row's recorded contribution). */
async function ledgerCounts (wfId: string): Promise<Counts> {
  const r = await db.query<Counts>(
    `select count(*) filter (where count_category is not null)::int as execution_count,
            count(*) filter (where count_category = 'success')::int as successful_executions,
            count(*) filter (where count_category = 'failed')::int as failed_executions
       from workflow_executions where workflow_id = $1`, [wfId])
  const row = r.rows[0]
  if (!row) throw new Error('no rows')
  return row
}

async function ledgerRows (wfId: string): Promise<{ total: number, distinct: number }> {
  const r = await db.query<{ total: number, distinct: number }>(
    'select count(*)::int as total, count(distinct n8n_execution_id)::int as distinct from workflow_executions where workflow_id = $1', [wfId])
  return r.rows[0] ?? { total: 0, distinct: 0 }
}

async function ledgerStatus (wfId: string, n8nExecutionId: number): Promise<string | undefined> {
  const r = await db.query<{ status: string }>('select status from workflow_executions where workflow_id = $1 and n8n_execution_id = $2', [wfId, String(n8nExecutionId)])
  return r.rows[0]?.status
}

/** Counts equal n8n's truth AND the ledger, and the ledger has no duplicates. */
async function assertExact (tt: Test, wf: Wf, truth: Counts, label: string): Promise<void> {
  tt.same(await counts(wf.id), truth, `${label}: counts equal n8n's truth`)
  tt.same(await ledgerCounts(wf.id), truth, `${label}: counts equal the ledger`)
  const rows = await ledgerRows(wf.id)
  tt.equal(rows.total, rows.distinct, `${label}: no duplicate ledger rows`)
}

async function logRow (id: string): Promise<{ sync_type: string, status: string, workflows_synced: number, workflows_failed: number, executions_ingested: number, error: string | null, details: Record<string, unknown>, user_id: string | null }> {
  const r = await db.query<{ sync_type: string, status: string, workflows_synced: number, workflows_failed: number, executions_ingested: number, error: string | null, details: Record<string, unknown>, user_id: string | null }>(
    'select sync_type, status, workflows_synced, workflows_failed, executions_ingested, error, details, user_id from sync_logs where id = $1', [id])
  const row = r.rows[0]
  if (!row) throw new Error('no sync_logs row ' + id)
  return row
}

async function logCount (userId: string | null): Promise<number> {
  const r = await db.query<{ n: number }>('select count(*)::int as n from sync_logs where user_id is not distinct from $1', [userId])
  return r.rows[0]?.n ?? 0
}

/** Physical identity of every row a user's sync could write (an UPDATE always makes a new xmin). */
async function rowVersions (userId: string): Promise<string[]> {
  const r = await db.query<{ v: string }>(
    `select 'e' || id::text || ':' || xmin::text as v from workflow_executions where user_id = $1
     union all
     select 'w' || id::text || ':' || xmin::text from mvp_workflows where user_id = $1
     order by 1`, [userId])
  return r.rows.map((x) => x.v)
}

const ALL_STATUSES = ['success', 'error', 'crashed', 'canceled', 'success', 'waiting', 'success', 'error']
const isWfList = (n8nId: string) => (c: Call) => c.path === '/executions' && c.query.get('workflowId') === n8nId

// ---- counts ------------------------------------------------------------------

t.test('counts equal n8n over several pages and every status; a run hidden at the first sync is counted once by the second', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const big = await newWorkflow(fake, u)
  const small = await newWorkflow(fake, u)
  fake.runMany(big.n8nId, 300, (i) => ALL_STATUSES[i % ALL_STATUSES.length] ?? 'success')
  fake.start(big.n8nId, 'new', { active: false })
  fake.start(big.n8nId, 'unknown', { active: false })
  const hidden = fake.start(big.n8nId, 'running') // hidden from the list
  const oldWaiting = fake.runMany(big.n8nId, 1, 'waiting')[0] ?? 0
  fake.runMany(big.n8nId, 300, (i) => ALL_STATUSES[(i + 3) % ALL_STATUSES.length] ?? 'success')
  fake.runMany(small.n8nId, 20, 'success')
  const recentWaiting = fake.start(big.n8nId, 'waiting')

  const e = engine()
  const r1 = await e.syncUser(u.scope)
  tt.equal(r1.status, 'success', JSON.stringify(r1.errors))
  tt.equal(r1.workflows_synced, 2)
  tt.equal(fake.executionCalls(big.n8nId).length, 3, 'the 604 visible executions of the big workflow take 3 pages of 250')
  tt.equal(r1.executions_ingested, 604 + 1 + 20, 'every visible execution, the running one from the running list, and the small workflow')
  tt.equal(await ledgerStatus(big.id, hidden), 'running', 'the hidden run is recorded (not counted) from the running list')
  await assertExact(tt, big, fake.truth(big.n8nId), 'big after sync 1')
  await assertExact(tt, small, fake.truth(small.n8nId), 'small after sync 1')
  const wf = (await db.query<{ last_execution_status: string, last_seen_execution_id: number, last_sync_at: string | null }>(
    'select last_execution_status, last_seen_execution_id, last_sync_at from mvp_workflows where id = $1', [big.id])).rows[0]
  tt.equal(wf?.last_execution_status, 'waiting', 'last execution is the newest one')
  tt.equal(wf?.last_seen_execution_id, recentWaiting)
  tt.ok(wf?.last_sync_at)

  fake.finish(hidden, 'success')
  fake.finish(oldWaiting, 'error')
  fake.finish(recentWaiting, 'crashed')
  fake.start(big.n8nId, 'canceled')
  const before = await counts(big.id)
  const r2 = await e.syncUser(u.scope)
  tt.equal(r2.status, 'success')
  tt.equal(r2.executions_ingested, 4, 'three status changes and one new run')
  tt.equal(await ledgerStatus(big.id, hidden), 'success')
  await assertExact(tt, big, fake.truth(big.n8nId), 'big after sync 2')
  const after = await counts(big.id)
  tt.same(after, {
    execution_count: before.execution_count + 4,
    successful_executions: before.successful_executions + 1,
    failed_executions: before.failed_executions + 2
  }, 'each finished run moved the counts exactly once')

  const r3 = await e.syncUser(u.scope)
  tt.equal(r3.executions_ingested, 0)
  await assertExact(tt, big, fake.truth(big.n8nId), 'big after sync 3')
})

t.test('the same sync twice: one list call per workflow and no row written the second time', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const a = await newWorkflow(fake, u)
  const b = await newWorkflow(fake, u)
  const c = await newWorkflow(fake, u)
  fake.runMany(a.n8nId, 300, (i) => (i % 5 === 0 ? 'error' : 'success'))
  fake.runMany(b.n8nId, 20, 'success')
  const e = engine()
  const r1 = await e.syncUser(u.scope)
  tt.equal(r1.status, 'success')
  tt.equal(r1.executions_ingested, 320)

  const versions = await rowVersions(u.id)
  const logsBefore = await logCount(u.id)
  nock.cleanAll()
  fake.resetCalls()
  const q = (p: string) => new URLSearchParams(p.split('?')[1] ?? '')
  const scope = fake.expectExactly([
    (p) => p.startsWith('/api/v1/executions?') && q(p).get('limit') === '250' && !q(p).has('workflowId') && !q(p).has('status'),
    (p) => p.startsWith('/api/v1/executions?') && q(p).get('status') === 'running',
    (p) => p.startsWith('/api/v1/workflows?') && q(p).get('name') === u.tag,
    ...[a, b, c].map((w) => (p: string) => p.startsWith('/api/v1/executions?') && q(p).get('workflowId') === w.n8nId)
  ])
  const r2 = await e.syncUser(u.scope)
  tt.equal(r2.status, 'success', 'no call outside the expected ones (it would find no interceptor and fail)')
  scope.done()
  for (const w of [a, b, c]) tt.equal(fake.executionCalls(w.n8nId).length, 1, 'one list call for the workflow')
  tt.equal(fake.calls.length, 6, 'three calls per sync + one per workflow')
  tt.equal(r2.executions_ingested, 0)
  tt.same(await rowVersions(u.id), versions, 'no ledger or workflow row was inserted or rewritten')
  tt.equal(await logCount(u.id), logsBefore + 1, 'only the sync_logs row')
  await assertExact(tt, a, fake.truth(a.n8nId), 'a')
})

t.test('a run that starts after the running list was read and is still hidden when its workflow is listed is not skipped', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 5, 'success')
  let late = 0
  let quick = 0
  // Right after n8n answers the running list: one run starts (and stays hidden), a later one
  // starts and finishes at once, so the list shows an id ABOVE the hidden one.
  fake.faults.push({
    match: (c) => c.query.get('status') === 'running',
    times: 1,
    reply: (c) => {
      const r = fake.route(c)
      late = fake.start(w.n8nId, 'running')
      quick = fake.start(w.n8nId, 'success')
      return r
    }
  })
  const e = engine()
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, quick), 'success')
  tt.equal(await ledgerStatus(w.id, late), undefined, 'hidden everywhere during the first sync')
  const floor = (await db.query<{ f: string }>('select execution_floor_id::text as f from mvp_workflows where id = $1', [w.id])).rows[0]?.f
  tt.ok(BigInt(floor ?? '0') < BigInt(late), 'the stop point stays below the hidden run (the ceiling was read before the running list)')
  fake.finish(late, 'error')
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, late), 'error')
  await assertExact(tt, w, fake.truth(w.n8nId), 'after the late run finished')
})

t.test('a run still `new` when the ceiling and the running list are read, hidden when its workflow is listed, is not skipped', async (tt) => {
  // Real n8n (seen with 1.123.5 under a burst of webhook runs, test-e2e/service.test.ts): a run is
  // created with stored status `new` and is visible in the plain list; `status=running` lists the
  // stored status only; once n8n puts the run in its in-memory active list it is hidden. So a run
  // can be the ceiling itself, absent from the running list, and hidden a moment later.
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 3, 'success')
  const e = engine()
  await e.syncUser(u.scope)
  fake.start(w.n8nId, 'success') // something new in the same pass, so the stop point moves
  const x = fake.start(w.n8nId, 'new', { active: false })
  fake.faults.push({
    match: (c) => c.path === '/executions' && c.query.get('workflowId') === w.n8nId,
    times: 1,
    reply: (c) => {
      fake.resume(x) // now running and hidden, before n8n answers the workflow's list
      return fake.route(c)
    }
  })
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, x), 'new', 'kept as an open row from the ceiling page')
  fake.finish(x, 'success')
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, x), 'success')
  await assertExact(tt, w, fake.truth(w.n8nId), 'after the run finished')
})

t.test('executions deleted or pruned in n8n after ingestion do not lower the counts', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  const ids = fake.runMany(w.n8nId, 60, (i) => (i % 3 === 0 ? 'error' : 'success'))
  const e = engine()
  await e.syncUser(u.scope)
  const truthBefore = fake.truth(w.n8nId)
  await assertExact(tt, w, truthBefore, 'after first sync')
  // pruning removes the oldest, a user deletes the newest ones
  for (const id of [...ids.slice(0, 40), ...ids.slice(-5)]) fake.remove(id)
  fake.runMany(w.n8nId, 3, 'success')
  const r = await e.syncUser(u.scope)
  tt.equal(r.executions_ingested, 3)
  tt.same(await counts(w.id), {
    execution_count: truthBefore.execution_count + 3,
    successful_executions: truthBefore.successful_executions + 3,
    failed_executions: truthBefore.failed_executions
  }, 'counts kept everything ever seen plus the new runs')
  tt.equal((await ledgerRows(w.id)).total, 63, 'the ledger keeps the deleted executions')
})

t.test('open rows: waiting → resumed (hidden) → success, and an old waiting run re-checked by id', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  const oldWaiting = fake.start(w.n8nId, 'waiting')
  const gone = fake.start(w.n8nId, 'waiting')
  fake.runMany(w.n8nId, 600, 'success')
  const recent = fake.start(w.n8nId, 'waiting')
  fake.runMany(w.n8nId, 5, 'success')
  const e = engine()
  await e.syncUser(u.scope)
  await assertExact(tt, w, fake.truth(w.n8nId), 'first sync')

  fake.resume(recent) // active again: hidden from the list, listed as running
  fake.finish(oldWaiting, 'success')
  fake.remove(gone)
  fake.resetCalls()
  const r2 = await e.syncUser(u.scope)
  tt.equal(r2.status, 'success')
  tt.equal(fake.executionCalls(w.n8nId).length, 1, 'one list page: the old open rows are not re-read through the list')
  tt.ok(fake.calls.some((c) => c.path === `/executions/${oldWaiting}`), 'the old waiting run is asked for by id')
  tt.equal(await ledgerStatus(w.id, oldWaiting), 'success')
  tt.equal(await ledgerStatus(w.id, recent), 'running', 'resumed run seen through the running list')
  await assertExact(tt, w, fake.truth(w.n8nId), 'second sync')
  const vanished = await db.query('select 1 from workflow_executions where workflow_id = $1 and n8n_execution_id = $2 and vanished_at is not null', [w.id, String(gone)])
  tt.equal(vanished.rows.length, 1, 'an open run deleted in n8n is marked vanished (not counted, no longer asked for)')

  fake.finish(recent, 'success')
  fake.resetCalls()
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, recent), 'success')
  tt.notOk(fake.calls.some((c) => c.path === `/executions/${gone}`), 'the vanished run is not asked for again')
  await assertExact(tt, w, fake.truth(w.n8nId), 'third sync')
})

t.test('n8n without a running list (< 1.113): the time-window fallback still counts a hidden run once', async (tt) => {
  const fake = useFake(tt)
  fake.runningFilterSupported = false
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 10, 'success')
  const hidden = fake.start(w.n8nId, 'running')
  fake.runMany(w.n8nId, 10, 'error')
  // the fake's clock is 2025-01-01; "now" is a little later, well inside the 24 h window
  const e = engine({ now: () => new Date('2025-01-01T06:00:00Z') })
  const r1 = await e.syncUser(u.scope)
  tt.equal(r1.status, 'success')
  tt.match((await logRow(r1.sync_log_id)).details, { running_list: 'unsupported' })
  tt.equal(await ledgerStatus(w.id, hidden), undefined, 'not visible anywhere yet')
  fake.finish(hidden, 'success')
  await e.syncUser(u.scope)
  tt.equal(await ledgerStatus(w.id, hidden), 'success', 'found below ids already seen')
  await assertExact(tt, w, fake.truth(w.n8nId), 'fallback')
  tt.equal(fake.calls.filter((c) => c.query.get('status') === 'running').length, 1, 'the unsupported filter is not asked for again at once')
})

// ---- concurrency -------------------------------------------------------------

t.test('two concurrent syncs of one user: shared in-process, serialised across processes', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 40, (i) => (i % 4 === 0 ? 'error' : 'success'))

  const e = engine()
  const logsBefore = await logCount(u.id)
  const [a, b] = await Promise.all([e.syncUser(u.scope), e.syncUser(u.scope)])
  tt.equal(a.sync_log_id, b.sync_log_id, 'the second call returned the running sync\'s result')
  tt.equal(await logCount(u.id), logsBefore + 1)
  await assertExact(tt, w, fake.truth(w.n8nId), 'coalesced')

  // Two engines = two replicas: the advisory lock makes the second wait for the first.
  fake.runMany(w.n8nId, 10, 'success')
  fake.resetCalls()
  let callsWhenFirstFinished = -1
  // The first replica holds its lock (its first page waits on `release`) until the second one is
  // seen waiting for that lock in Postgres.
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const slow = engine({ hooks: { afterPage: () => held, beforeLog: () => { callsWhenFirstFinished = fake.calls.length } } })
  const other = engine()
  const p1 = slow.syncUser(u.scope)
  let p2: Promise<SyncResult>
  try {
    await waitFor(() => fake.calls.length > 0, 15_000, 'the first replica holds the lock (its first n8n call)')
    p2 = other.syncUser(u.scope)
    await waitFor(async () => (await db.query<{ n: number }>(
      "select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())")).rows[0]?.n === 1,
    15_000, 'the second replica waits for the lock')
  } finally {
    release()
  }
  const [r1, r2] = await Promise.all([p1, p2])
  tt.not(r1.sync_log_id, r2.sync_log_id)
  tt.equal(r1.executions_ingested, 10, 'the first replica ingested the new runs')
  tt.equal(r2.executions_ingested, 0, 'the second one, after waiting for the lock, found nothing new')
  const probes = fake.calls.map((c, i) => (c.path === '/executions' && !c.query.has('workflowId') && !c.query.has('status') ? i : -1)).filter((i) => i >= 0)
  tt.equal(probes.length, 2)
  tt.ok(callsWhenFirstFinished > 0 && (probes[1] ?? -1) >= callsWhenFirstFinished, 'the second replica made no n8n call before the first one finished')
  await assertExact(tt, w, fake.truth(w.n8nId), 'serialised')

  // A subset sync while a full one runs is covered by it.
  const [full, subset] = await Promise.all([e.syncUser(u.scope), e.syncUser(u.scope, { workflowIds: [w.id] })])
  tt.equal(full.sync_log_id, subset.sync_log_id)
})

// ---- crash safety --------------------------------------------------------------

t.test('crash between n8n pages: what was committed stays, the resync completes exactly', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 700, (i) => ALL_STATUSES[i % ALL_STATUSES.length] ?? 'success')
  const crashing = engine({ hooks: { afterPage: (_id, page) => { if (page === 1) throw new AppCrash() } } })
  const { value: r1, logged } = await injected(() => crashing.syncUser(u.scope))
  // The injected crash is an unexpected error on purpose: logged once, for its workflow.
  tt.equal(logged.length, 1, 'the injected crash, logged once')
  tt.ok(logged[0]?.err instanceof AppCrash, 'it is the injected crash')
  tt.equal(logged[0]?.workflow_id, w.id)
  tt.equal(r1.status, 'failed')
  tt.equal((await ledgerRows(w.id)).total, 500, 'two pages were committed before the crash')
  tt.same(await counts(w.id), await ledgerCounts(w.id), 'counts equal the ledger even mid-pass')
  const floor = await db.query<{ f: string | null }>('select execution_floor_id::text as f from mvp_workflows where id = $1', [w.id])
  tt.equal(floor.rows[0]?.f, null, 'the stop point did not move')
  const r2 = await engine().syncUser(u.scope)
  tt.equal(r2.status, 'success')
  tt.equal(r2.executions_ingested, 200, 'only the missing page was written')
  await assertExact(tt, w, fake.truth(w.n8nId), 'after resync')
})

class AppCrash extends Error {}

t.test('crash between ledger and counts: one transaction, nothing half-written', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 30, (i) => (i % 2 === 0 ? 'success' : 'crashed'))
  // A trigger that fails the counts update after the ledger upsert ran in the same function.
  await db.query(`create table if not exists test_fail_counts (workflow_id uuid primary key);
    grant select on test_fail_counts to authenticated, service_role;
    create or replace function test_fail_counts_fn() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from public.test_fail_counts where workflow_id = new.id)
         and new.execution_count is distinct from old.execution_count then
        raise exception 'injected failure between ledger and counts';
      end if;
      return new;
    end $$;
    drop trigger if exists test_fail_counts_trg on mvp_workflows;
    create trigger test_fail_counts_trg before update on mvp_workflows for each row execute function test_fail_counts_fn();`)
  await db.query('insert into test_fail_counts values ($1)', [w.id])
  tt.teardown(() => db.query('drop trigger if exists test_fail_counts_trg on mvp_workflows'))
  const { value: r1, logged } = await injected(() => engine().syncUser(u.scope))
  tt.equal(logged.length, 1, 'the injected failure, logged once')
  tt.match(logged[0], { workflow_id: w.id, err: { message: 'injected failure between ledger and counts' } })
  tt.equal(r1.status, 'failed')
  tt.equal((await ledgerRows(w.id)).total, 0, 'the ledger rows were rolled back with the counts')
  tt.same(await counts(w.id), { execution_count: 0, successful_executions: 0, failed_executions: 0 })
  await db.query('delete from test_fail_counts')
  const r2 = await engine().syncUser(u.scope)
  tt.equal(r2.executions_ingested, 30)
  await assertExact(tt, w, fake.truth(w.n8nId), 'after resync')
})

t.test('crash before the log row: the data is kept, the resync writes nothing twice', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 270, 'success')
  const logsBefore = await logCount(u.id)
  await tt.rejects(engine({ hooks: { beforeLog: () => { throw new AppCrash('killed') } } }).syncUser(u.scope), { message: 'killed' })
  tt.equal(await logCount(u.id), logsBefore, 'no log row for the killed sync')
  await assertExact(tt, w, fake.truth(w.n8nId), 'before resync')
  const r = await engine().syncUser(u.scope)
  tt.equal(r.executions_ingested, 0)
  tt.equal(await logCount(u.id), logsBefore + 1)
  await assertExact(tt, w, fake.truth(w.n8nId), 'after resync')
})

// ---- fault matrix ----------------------------------------------------------------

async function faultCase (tt: Test, setup: (fake: FakeN8n, bad: Wf) => void, extra: { timeoutMs?: number } = {}): Promise<{ result: SyncResult, bad: Wf, good: Wf, fake: FakeN8n }> {
  const fake = useFake(tt)
  const u = newUser()
  const bad = await newWorkflow(fake, u)
  const good = await newWorkflow(fake, u)
  fake.runMany(bad.n8nId, 5, 'success')
  fake.runMany(good.n8nId, 5, 'error')
  setup(fake, bad)
  const e = engine({ n8n: client(N8N_BASE, extra) })
  const result = await e.syncUser(u.scope)
  await assertExact(tt, good, fake.truth(good.n8nId), 'the healthy workflow is synced anyway')
  return { result, bad, good, fake }
}

function failBadList (fake: FakeN8n, bad: Wf, reply: Parameters<FakeN8n['faults']['push']>[0]['reply'], times?: number): void {
  fake.faults.push({ match: isWfList(bad.n8nId), reply, ...(times === undefined ? {} : { times }) })
}

t.test('fault matrix', async (tt) => {
  const cases: Array<{ name: string, code: string, setup: (fake: FakeN8n, bad: Wf) => void, timeoutMs?: number }> = [
    { name: 'HTTP 500', code: 'n8n_error', setup: (f, b) => failBadList(f, b, () => [500, { message: 'boom' }]) },
    { name: 'HTTP 503', code: 'n8n_unavailable', setup: (f, b) => failBadList(f, b, () => [503, { message: 'down' }]) },
    { name: 'persistent 429', code: 'n8n_unavailable', setup: (f, b) => failBadList(f, b, () => [429, { message: 'slow down' }, { 'retry-after': '1' }]) },
    // A slow n8n (answers after the client's 100 ms timeout): a delay of the fault, not a wait of the test.
    { name: 'timeout', code: 'n8n_unavailable', timeoutMs: 100, setup: (f, b) => failBadList(f, b, async () => { await sleep(400); return [200, { data: [], nextCursor: null }] }) },
    { name: 'malformed JSON', code: 'n8n_error', setup: (f, b) => failBadList(f, b, () => [200, '{"data": [ not json']) },
    { name: 'wrong shape', code: 'n8n_error', setup: (f, b) => failBadList(f, b, () => [200, { data: [{ id: 'abc' }], nextCursor: null }]) }
  ]
  for (const c of cases) {
    await tt.test(c.name, async (t2) => {
      const { result, bad } = await faultCase(t2, c.setup, c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs })
      t2.equal(result.status, 'partial')
      t2.equal(result.workflows_synced, 1)
      t2.equal(result.workflows_failed, 1)
      t2.match(result.errors, [{ workflow_id: bad.id, code: c.code }])
      const log = await logRow(result.sync_log_id)
      t2.match(log, { status: 'partial', workflows_failed: 1, workflows_synced: 1, error: '1 of 2 workflow(s) failed' })
      t2.match(log.details, { errors: [{ workflow_id: bad.id, code: c.code }] })
      t2.equal((await ledgerRows(bad.id)).total, 0)
    })
  }

  await tt.test('429 with Retry-After, then OK: retried, success', async (t2) => {
    let at = 0
    const { result, bad, fake } = await faultCase(t2, (f, b) => failBadList(f, b, () => { at = Date.now(); return [429, { message: 'slow down' }, { 'retry-after': '1' }] }, 1))
    t2.equal(result.status, 'success')
    t2.equal(fake.executionCalls(bad.n8nId).length, 2, 'asked again after the 429')
    t2.ok(at > 0)
    await assertExact(t2, bad, fake.truth(bad.n8nId), 'after the retry')
    t2.equal((await logRow(result.sync_log_id)).status, 'success')
  })

  await tt.test('workflow 404 → missing_in_n8n, drift in the log, skipped afterwards', async (t2) => {
    const { result, bad, fake } = await faultCase(t2, (f, b) => {
      f.workflows.delete(b.n8nId)
      for (const e of [...f.executions.values()]) if (e.workflowId === b.n8nId) f.executions.delete(e.id)
    })
    t2.equal(result.status, 'partial')
    t2.match(result.errors, [{ workflow_id: bad.id, code: 'not_found' }])
    const row = (await db.query<{ status: string, last_error: string | null }>('select status, last_error from mvp_workflows where id = $1', [bad.id])).rows[0]
    t2.equal(row?.status, 'missing_in_n8n')
    t2.match(row?.last_error, /missing in n8n/)
    t2.match((await logRow(result.sync_log_id)).details, { drift: [{ workflow_id: bad.id, kind: 'missing_in_n8n' }] })
    fake.resetCalls()
    const u = (await db.query<{ user_id: string }>('select user_id from mvp_workflows where id = $1', [bad.id])).rows[0]?.user_id ?? ''
    const again = await engine().syncUser(userScope({ sub: u, role: 'authenticated' }))
    t2.equal(again.status, 'success', 'the missing workflow is skipped until it is redeployed')
    t2.match((await logRow(again.sync_log_id)).details, { skipped: [{ workflow_id: bad.id, reason: 'missing_in_n8n' }] })
    t2.equal(fake.executionCalls(bad.n8nId).length, 0)
  })

  await tt.test('n8n down: failed, every workflow in errors, a log row', async (t2) => {
    const fake = useFake(t2)
    const u = newUser()
    const a = await newWorkflow(fake, u)
    const b = await newWorkflow(fake, u)
    const e = engine({ n8n: client('http://n8n-down.test/api/v1') })
    const r = await e.syncUser(u.scope)
    t2.equal(r.status, 'failed')
    t2.equal(r.workflows_failed, 2)
    t2.same(r.errors.map((x) => [x.workflow_id, x.code]).sort(), [[a.id, 'n8n_unavailable'], [b.id, 'n8n_unavailable']].sort())
    const log = await logRow(r.sync_log_id)
    t2.match(log, { status: 'failed', workflows_failed: 2, user_id: u.id })
    t2.match(log.error, /n8n request GET \/(executions|workflows) failed/)
  })
})

// ---- drift, redeploy, isolation -------------------------------------------------------

t.test('drift: n8n active flag set back to the database value; pending rows redeployed', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const on = await newWorkflow(fake, u, { active: true, n8nActive: false })
  const off = await newWorkflow(fake, u, { active: false, n8nActive: true })
  const same = await newWorkflow(fake, u, { active: true, n8nActive: true })
  const pending = await newWorkflow(fake, u, { status: 'pending' })
  const redeployed: string[] = []
  const r = await engine({ redeploy: async (scope, id) => { tt.equal(scope, u.scope); redeployed.push(id) } }).syncUser(u.scope)
  tt.equal(r.status, 'success')
  tt.equal(r.workflows_synced, 4)
  tt.equal(fake.workflows.get(on.n8nId)?.active, true, 'activated in n8n')
  tt.equal(fake.workflows.get(off.n8nId)?.active, false, 'deactivated in n8n')
  tt.ok(fake.calls.some((c) => c.method === 'POST' && c.path === `/workflows/${on.n8nId}/activate`))
  tt.ok(fake.calls.some((c) => c.method === 'POST' && c.path === `/workflows/${off.n8nId}/deactivate`))
  tt.notOk(fake.calls.some((c) => c.method === 'POST' && c.path.includes(same.n8nId)), 'no call for a workflow without drift')
  tt.same(redeployed, [pending.id])
  const details = (await logRow(r.sync_log_id)).details as { drift: Array<{ workflow_id: string }> }
  tt.same(details.drift.map((d) => d.workflow_id).sort(), [on.id, off.id].sort())
  tt.match(details.drift, [{ kind: 'active', repaired: true }, { kind: 'active', repaired: true }])

  // without a redeploy function the pending row is reported as skipped
  const r2 = await engine().syncUser(u.scope)
  tt.match((await logRow(r2.sync_log_id)).details, { skipped: [{ workflow_id: pending.id, reason: 'pending' }] })
})

t.test('user isolation: a user sync never touches or shows another user\'s rows', async (tt) => {
  const fake = useFake(tt)
  const alice = newUser()
  const bob = newUser()
  const a = await newWorkflow(fake, alice)
  const b = await newWorkflow(fake, bob, { active: true, n8nActive: false })
  fake.runMany(a.n8nId, 10, 'success')
  fake.runMany(b.n8nId, 10, 'success')
  const e = engine()
  const ra = await e.syncUser(alice.scope)
  tt.equal(ra.status, 'success')
  tt.equal(ra.workflows_synced, 1, 'alice\'s one workflow, not bob\'s')
  tt.equal((await ledgerRows(b.id)).total, 0)
  tt.same(await counts(b.id), { execution_count: 0, successful_executions: 0, failed_executions: 0 })
  tt.equal(fake.executionCalls(b.n8nId).length, 0, 'no n8n call for bob\'s workflow')
  tt.equal(fake.workflows.get(b.n8nId)?.active, false, 'bob\'s drift untouched by alice\'s sync')

  const sneaky = await e.syncUser(alice.scope, { workflowIds: [b.id] })
  tt.equal(sneaky.status, 'failed')
  tt.match(sneaky.errors, [{ workflow_id: b.id, code: 'not_found' }])
  tt.equal((await ledgerRows(b.id)).total, 0)
  const history = new SyncHistory({ store })
  await tt.rejects(history.listExecutions(alice.scope, b.id), { code: 'not_found' })

  // the store function is not executable with a user's token at all (trust model: service_role only)
  await tt.rejects(db.withUser({ sub: alice.id, role: 'authenticated' }, (tx) =>
    tx.query("select public.ingest_executions($1, '[]'::jsonb, now(), '{}'::jsonb)", [b.id])), { code: '42501' })

  const rb = await e.syncUser(bob.scope)
  tt.equal(rb.status, 'success')
  const logsA = await history.listLogs(alice.scope, { limit: 100 })
  tt.same(logsA.data.map((l) => l.id).sort(), [ra.sync_log_id, sneaky.sync_log_id].sort(), 'alice sees her two syncs, and nothing else')
  tt.ok(logsA.data.every((l) => l.user_id === alice.id), 'alice sees only her logs')
  tt.same((await history.listLogs(bob.scope, { limit: 100 })).data.map((l) => l.id), [rb.sync_log_id], 'bob sees his one sync')
  const all = await history.listLogs(serviceScope, { limit: 100 })
  const allIds = new Set(all.data.map((l) => l.id))
  tt.ok([ra.sync_log_id, sneaky.sync_log_id, rb.sync_log_id].every((id) => allIds.has(id)), 'the service sees everyone\'s')
  tt.ok(all.data.some((l) => l.user_id === bob.id) && all.data.some((l) => l.user_id === alice.id), 'the service sees everyone\'s')
})

t.test('syncAll: every user\'s workflows, one log row without a user', async (tt) => {
  await onlyThese() // earlier tests' workflows (in other fakes) would be drift here
  const fake = useFake(tt)
  const users = [newUser(), newUser(), newUser()]
  const wfs: Wf[] = []
  for (const u of users) {
    const w = await newWorkflow(fake, u)
    fake.runMany(w.n8nId, 7, (i) => (i % 2 === 0 ? 'success' : 'canceled'))
    wfs.push(w)
  }
  const r = await engine().syncAll()
  tt.equal(r.status, 'success', JSON.stringify(r.errors))
  tt.equal(r.workflows_synced, 3)
  tt.equal(r.workflows_failed, 0)
  tt.equal(r.executions_ingested, 21, 'seven executions of each of the three workflows')
  for (const w of wfs) await assertExact(tt, w, fake.truth(w.n8nId), 'syncAll')
  tt.match(await logRow(r.sync_log_id), { sync_type: 'all', user_id: null, status: 'success', workflows_synced: 3, workflows_failed: 0, executions_ingested: 21 })
  const again = await engine().syncAll()
  tt.equal(again.status, 'success')
  tt.equal(again.workflows_synced, 3)
  tt.equal(again.executions_ingested, 0)
})

// ---- /sync/all as an instance scan ---------------------------------------------------

/** The scan tests own the database: earlier tests' workflows (in other fakes) would be drift. */
async function onlyThese (): Promise<void> {
  await db.query('delete from mvp_workflows')
}

const instancePages = (fake: FakeN8n) => fake.executionCalls().filter((c) => !c.query.has('workflowId') && !c.query.has('status'))
const scanFloor = async (wfId: string): Promise<string | null> =>
  (await db.query<{ f: string }>('select floor_id::text as f from workflow_scan_floors where workflow_id = $1', [wfId])).rows[0]?.f ?? null
const ownFloor = async (wfId: string): Promise<string | null> =>
  (await db.query<{ f: string | null }>('select execution_floor_id::text as f from mvp_workflows where id = $1', [wfId])).rows[0]?.f ?? null

t.test('syncAll, instance scan: exact over interleaved pages and partial chunks; hidden runs counted once later; foreign workflows ignored; nothing written when nothing is new', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const users = [newUser(), newUser()]
  const wfs: Wf[] = []
  for (const u of users) for (let i = 0; i < 3; i++) wfs.push(await newWorkflow(fake, u))
  fake.addWorkflow('foreign-1', 'someone else\'s workflow', false)
  const e = engine({ syncAllStrategy: 'scan', scanBufferLimit: 300 })
  for (const w of wfs) fake.runMany(w.n8nId, 2, 'success')
  await e.syncAll() // every stop point set
  const all = [...wfs.map((w) => w.n8nId), 'foreign-1']
  const hidden: number[] = []
  for (let i = 0; i < 700; i++) {
    const id = all[i % all.length] ?? 'foreign-1'
    if (i % 97 === 5) hidden.push(fake.start(id, 'running'))
    else fake.start(id, ALL_STATUSES[i % ALL_STATUSES.length] ?? 'success')
  }
  fake.resetCalls()
  const r1 = await e.syncAll()
  tt.equal(r1.status, 'success')
  tt.equal(r1.workflows_synced, 6)
  tt.equal(fake.executionCalls().filter((c) => c.query.has('workflowId')).length, 0, 'no per-workflow list')
  tt.equal(instancePages(fake).length, 1 + 3, 'the ceiling page, then 3 pages of 250 down to the stop point')
  for (const w of wfs) await assertExact(tt, w, fake.truth(w.n8nId), 'scan 1')
  const ours = hidden.filter((id) => fake.executions.get(id)?.workflowId !== 'foreign-1')
  tt.ok(ours.length >= 5)
  for (const id of ours) {
    const w = wfs.find((x) => x.n8nId === fake.executions.get(id)?.workflowId)
    tt.equal(w && await ledgerStatus(w.id, id), 'running', 'a hidden run is an open ledger row')
  }
  tt.equal((await db.query('select 1 from workflow_executions where n8n_workflow_id = $1', ['foreign-1'])).rows.length, 0)

  for (const id of hidden) fake.finish(id, 'success')
  for (let i = 0; i < 40; i++) fake.start(all[i % all.length] ?? 'foreign-1', 'error')
  fake.resetCalls()
  const r2 = await e.syncAll()
  tt.equal(r2.status, 'success')
  tt.equal(r2.executions_ingested, ours.length + 35, 'the finished runs (status changes) and the 35 new runs of our workflows (5 of the 40 are foreign)')
  for (const id of ours) tt.ok(fake.calls.some((c) => c.path === `/executions/${id}`), 'a finished run below the stop point is asked for by id')
  for (const w of wfs) await assertExact(tt, w, fake.truth(w.n8nId), 'scan 2')

  const versions = [...await rowVersions(users[0]?.id ?? ''), ...await rowVersions(users[1]?.id ?? '')]
  fake.resetCalls()
  const r3 = await e.syncAll()
  tt.equal(r3.executions_ingested, 0)
  tt.equal(instancePages(fake).length, 2, 'the ceiling page and one scan page')
  tt.same([...await rowVersions(users[0]?.id ?? ''), ...await rowVersions(users[1]?.id ?? '')], versions, 'no ledger or workflow row written')
  const r4 = await engine({ syncAllStrategy: 'per_workflow' }).syncAll()
  tt.equal(r4.executions_ingested, 0, 'the per-workflow strategy agrees: nothing left to read')
  for (const w of wfs) await assertExact(tt, w, fake.truth(w.n8nId), 'per_workflow after scan')
})

t.test('syncAll, instance scan: an idle workflow\'s stop point is raised outside mvp_workflows, so later scans stay shallow; user syncs honour it', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const u = newUser()
  const busy = await newWorkflow(fake, u)
  const idle = await newWorkflow(fake, u)
  const waiting = await newWorkflow(fake, u)
  fake.runMany(idle.n8nId, 5, 'success')
  fake.runMany(busy.n8nId, 5, 'success')
  const open = fake.start(waiting.n8nId, 'waiting')
  const lazy = engine({ syncAllStrategy: 'scan', scanLagIds: 100_000 })
  const e = engine({ syncAllStrategy: 'scan', scanLagIds: 0 })
  await e.syncAll()
  const idleFloor = await ownFloor(idle.id)
  fake.runMany(busy.n8nId, 600, 'success')
  await lazy.syncAll()
  tt.equal(await scanFloor(idle.id), null, 'within the lag allowance: not raised')
  const idleRow = (await db.query<{ v: string }>('select xmin::text as v from mvp_workflows where id = $1', [idle.id])).rows[0]?.v
  fake.runMany(busy.n8nId, 600, 'success')
  fake.resetCalls()
  await e.syncAll()
  tt.equal(instancePages(fake).length, 1 + 5, 'read down to the idle workflow\'s old stop point: 1200 runs, 5 pages')
  const top = String(Math.max(...fake.executions.keys()))
  tt.equal(await scanFloor(idle.id), top, 'raised to the ceiling')
  tt.equal(await ownFloor(idle.id), idleFloor, 'its own column is untouched')
  tt.equal((await db.query<{ v: string }>('select xmin::text as v from mvp_workflows where id = $1', [idle.id])).rows[0]?.v, idleRow, 'the idle workflow\'s row was not written (no event, no updated_at)')
  tt.equal(await scanFloor(waiting.id), null, 'a workflow with an open row is written through ingest (and its open row re-checked), not raised')
  tt.ok(fake.calls.some((c) => c.path === `/executions/${open}`), 'the waiting run was re-checked by id')
  fake.runMany(busy.n8nId, 10, 'success')
  fake.resetCalls()
  await e.syncAll()
  tt.equal(instancePages(fake).length, 2, 'next scan: the ceiling page and one page (the idle stop point no longer holds it down)')
  for (const w of [busy, idle, waiting]) await assertExact(tt, w, fake.truth(w.n8nId), 'after the raise')
  fake.runMany(idle.n8nId, 3, 'error')
  fake.resetCalls()
  const r = await engine().syncUser(u.scope, { workflowIds: [idle.id] })
  tt.equal(r.executions_ingested, 3)
  tt.equal(fake.executionCalls(idle.n8nId).length, 1, 'a user sync stops at the raised stop point')
  await assertExact(tt, idle, fake.truth(idle.n8nId), 'user sync after the raise')
  fake.finish(open, 'success')
  await e.syncAll()
  await assertExact(tt, waiting, fake.truth(waiting.n8nId), 'the waiting run finished')
})

t.test('syncAll, instance scan: a crash between pages keeps what was committed; the resync is exact', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const u = newUser()
  const wfs = [await newWorkflow(fake, u), await newWorkflow(fake, u), await newWorkflow(fake, u)]
  for (const w of wfs) fake.runMany(w.n8nId, 1, 'success')
  await engine({ syncAllStrategy: 'scan' }).syncAll()
  const floors = await Promise.all(wfs.map((w) => ownFloor(w.id)))
  for (let i = 0; i < 900; i++) fake.start(wfs[i % 3]?.n8nId ?? '', ALL_STATUSES[i % ALL_STATUSES.length] ?? 'success')
  const crashing = engine({ syncAllStrategy: 'scan', scanBufferLimit: 250, hooks: { afterScanPage: (page) => { if (page === 1) throw new AppCrash() } } })
  const { value: r1, logged } = await injected(() => crashing.syncAll())
  // The scan's crash fails the three workflows whose pass it interrupted: one log line each.
  tt.equal(logged.length, 3, 'the injected crash, logged once per workflow it failed')
  tt.ok(logged.every((l) => l.err instanceof AppCrash), 'each is the injected crash')
  tt.same(logged.map((l) => l.workflow_id).sort(), wfs.map((w) => w.id).sort())
  tt.equal(r1.status, 'failed')
  tt.equal(r1.workflows_failed, 3)
  let rows = 0
  for (const w of wfs) {
    rows += (await ledgerRows(w.id)).total
    tt.same(await counts(w.id), await ledgerCounts(w.id), 'counts equal the ledger mid-pass')
  }
  tt.equal(rows, 3 + 500, 'the two pages read before the crash were committed as partial chunks')
  tt.same(await Promise.all(wfs.map((w) => ownFloor(w.id))), floors, 'no stop point moved')
  const r2 = await engine({ syncAllStrategy: 'scan' }).syncAll()
  tt.equal(r2.status, 'success')
  tt.equal(r2.executions_ingested, 400, 'only what was missing')
  for (const w of wfs) await assertExact(tt, w, fake.truth(w.n8nId), 'after resync')
})

t.test('syncAll, instance scan: a workflow whose writes fail fails alone, its stop point stays, the others are exact', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const u = newUser()
  const [a, b, bad] = [await newWorkflow(fake, u), await newWorkflow(fake, u), await newWorkflow(fake, u)]
  if (!a || !b || !bad) throw new Error('setup')
  for (const w of [a, b, bad]) fake.runMany(w.n8nId, 1, 'success')
  await engine({ syncAllStrategy: 'scan' }).syncAll()
  const badFloor = await ownFloor(bad.id)
  for (let i = 0; i < 600; i++) fake.start([a, b, bad][i % 3]?.n8nId ?? '', i % 5 === 0 ? 'error' : 'success')
  // The same injected failure as above: the counts update of `bad` raises (in a batch with the others).
  await db.query(`create table if not exists test_fail_counts (workflow_id uuid primary key);
    grant select on test_fail_counts to authenticated, service_role;
    create or replace function test_fail_counts_fn() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from public.test_fail_counts where workflow_id = new.id)
         and new.execution_count is distinct from old.execution_count then
        raise exception 'injected failure between ledger and counts';
      end if;
      return new;
    end $$;
    drop trigger if exists test_fail_counts_trg on mvp_workflows;
    create trigger test_fail_counts_trg before update on mvp_workflows for each row execute function test_fail_counts_fn();`)
  await db.query('delete from test_fail_counts')
  await db.query('insert into test_fail_counts values ($1)', [bad.id])
  tt.teardown(() => db.query('drop trigger if exists test_fail_counts_trg on mvp_workflows'))
  const { value: r1, logged } = await injected(() => engine({ syncAllStrategy: 'scan', scanBufferLimit: 250 }).syncAll())
  tt.equal(logged.length, 1, 'the injected failure, logged once, for the failing workflow only')
  tt.match(logged[0], { workflow_id: bad.id, err: { message: 'injected failure between ledger and counts' } })
  tt.equal(r1.status, 'partial')
  tt.equal(r1.workflows_failed, 1)
  tt.match(r1.errors, [{ workflow_id: bad.id }])
  tt.equal(await ownFloor(bad.id), badFloor, 'its stop point did not move')
  tt.equal((await ledgerRows(bad.id)).total, 1, 'none of its new executions was written')
  tt.same(await counts(bad.id), await ledgerCounts(bad.id))
  for (const w of [a, b]) await assertExact(tt, w, fake.truth(w.n8nId), 'the others')
  await db.query('delete from test_fail_counts')
  const r2 = await engine({ syncAllStrategy: 'scan' }).syncAll()
  tt.equal(r2.status, 'success')
  tt.equal(r2.executions_ingested, 200)
  for (const w of [a, b, bad]) await assertExact(tt, w, fake.truth(w.n8nId), 'after the fault is gone')
})

t.test('syncAll, instance scan: never-synced workflows join the scan when it is cheap, else get their own list; drift is repaired', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const u = newUser()
  const old = await newWorkflow(fake, u)
  fake.runMany(old.n8nId, 1300, (i) => (i % 4 === 0 ? 'error' : 'success'))
  const e = engine({ syncAllStrategy: 'scan', concurrency: 1 })
  fake.resetCalls()
  await e.syncAll()
  tt.equal(fake.executionCalls(old.n8nId).length, 6, 'alone and never synced: its own list (6 pages) beats scanning the instance')
  const fresh = await newWorkflow(fake, u)
  const on = await newWorkflow(fake, u, { active: true, n8nActive: false })
  const gone = await newWorkflow(fake, u)
  fake.workflows.delete(gone.n8nId)
  fake.runMany(fresh.n8nId, 3, 'success')
  fake.runMany(on.n8nId, 2, 'crashed')
  fake.resetCalls()
  const r = await e.syncAll()
  tt.equal(fake.executionCalls(fresh.n8nId).length, 1, 'a new workflow next to a deep stop point: its own list')
  tt.equal(r.status, 'partial')
  tt.match(r.errors, [{ workflow_id: gone.id, code: 'not_found' }])
  tt.equal((await db.query<{ status: string }>('select status from mvp_workflows where id = $1', [gone.id])).rows[0]?.status, 'missing_in_n8n')
  tt.equal(fake.workflows.get(on.n8nId)?.active, true, 'active flag set back to the database value')
  for (const w of [old, fresh, on]) await assertExact(tt, w, fake.truth(w.n8nId), 'mixed')
  // Six more never-synced workflows at concurrency 1: six waves of one list each cost as much as
  // reading the instance to its bottom (~1,320 runs: 6 pages), so they join the scan.
  const more: Wf[] = []
  for (let i = 0; i < 6; i++) more.push(await newWorkflow(fake, u))
  for (const w of more) fake.runMany(w.n8nId, 2, 'success')
  fake.resetCalls()
  await e.syncAll()
  tt.equal(more.reduce((n, w) => n + fake.executionCalls(w.n8nId).length, 0), 0, 'they joined the scan: no list of their own')
  tt.equal(instancePages(fake).length, 1 + 6, 'the ceiling page and the whole instance list')
  for (const w of [...more, old, fresh, on]) await assertExact(tt, w, fake.truth(w.n8nId), 'joined the scan')
})

t.test('syncAll, first full sync: never-synced workflows join the scan when it costs fewer n8n calls than their lists (up to 4x their waves)', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  const u = newUser()
  // 12 workflows × 60 executions appended together: the instance holds 720 (3 pages of 250).
  // At concurrency 8 their lists take 2 waves of 12 calls; the scan 3 pages: fewer calls, within 4x.
  const team: Wf[] = []
  for (let i = 0; i < 12; i++) team.push(await newWorkflow(fake, u))
  for (const w of team) fake.runMany(w.n8nId, 60, (i) => (i % 5 === 0 ? 'error' : i % 7 === 0 ? 'canceled' : 'success'))
  fake.resetCalls()
  const r = await engine({ syncAllStrategy: 'scan', concurrency: 8 }).syncAll()
  tt.equal(r.status, 'success')
  tt.equal(r.executions_ingested, 720)
  tt.equal(team.reduce((n, w) => n + fake.executionCalls(w.n8nId).length, 0), 0, 'no list of their own')
  tt.equal(instancePages(fake).length, 1 + 3, 'the ceiling page and the whole instance list')
  for (const w of team) await assertExact(tt, w, fake.truth(w.n8nId), 'first full sync through the scan')
  for (const w of team) tt.ok(await ownFloor(w.id) !== null, 'the pass completed: a stop point is set')
  // Two more next to stop points at ~720: 2 list calls (one wave) against 3 scan pages to the
  // bottom: more calls, so their own lists.
  const late: Wf[] = []
  for (let i = 0; i < 2; i++) late.push(await newWorkflow(fake, u))
  for (const w of late) fake.runMany(w.n8nId, 100, 'success')
  fake.resetCalls()
  const r2 = await engine({ syncAllStrategy: 'scan', concurrency: 64 }).syncAll()
  tt.equal(r2.status, 'success')
  tt.same(late.map((w) => fake.executionCalls(w.n8nId).length), [1, 1], 'each its own list')
  for (const w of [...team, ...late]) await assertExact(tt, w, fake.truth(w.n8nId), 'after the late ones')
})

t.test('syncAll, instance scan: n8n without a running list (< 1.113) still counts a hidden run once', async (tt) => {
  await onlyThese()
  const fake = useFake(tt)
  fake.runningFilterSupported = false
  const u = newUser()
  const w = await newWorkflow(fake, u)
  const other = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 3, 'success')
  const e = engine({ syncAllStrategy: 'scan', scanLagIds: 0, now: () => new Date('2025-01-01T06:00:00Z') })
  await e.syncAll()
  const hidden = fake.start(w.n8nId, 'running')
  fake.runMany(other.n8nId, 300, 'success')
  await e.syncAll()
  tt.equal(await ledgerStatus(w.id, hidden), undefined, 'not visible anywhere yet')
  fake.finish(hidden, 'error')
  await e.syncAll()
  tt.equal(await ledgerStatus(w.id, hidden), 'error', 'found below ids already seen')
  for (const x of [w, other]) await assertExact(tt, x, fake.truth(x.n8nId), 'fallback scan')
})

// ---- read side -------------------------------------------------------------------

t.test('execution history, logs and stats', async (tt) => {
  const fake = useFake(tt)
  const u = newUser()
  const w = await newWorkflow(fake, u)
  fake.runMany(w.n8nId, 7, (i) => (i < 2 ? 'error' : 'success'))
  const e = engine()
  await e.syncUser(u.scope)
  const h = new SyncHistory({ store })

  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page: Awaited<ReturnType<SyncHistory['listExecutions']>> = await h.listExecutions(u.scope, w.id, { limit: 3, cursor })
    tt.ok(page.data.length <= 3)
    seen.push(...page.data.map((x) => x.n8n_execution_id))
    cursor = page.next_cursor
  } while (cursor !== null)
  tt.same(seen, [...seen].sort((x, y) => Number(y) - Number(x)), 'newest first')
  tt.equal(new Set(seen).size, 7, 'every execution once')
  tt.equal((await h.listExecutions(u.scope, w.id, { status: 'error' })).data.length, 2)
  await tt.rejects(h.listExecutions(u.scope, w.id, { cursor: 'nope' }), { code: 'validation_failed' })
  await tt.rejects(h.listExecutions(u.scope, randomUUID()), { code: 'not_found' })

  await e.syncUser(u.scope)
  await e.syncUser(u.scope)
  const p1 = await h.listLogs(u.scope, { limit: 2 })
  tt.equal(p1.data.length, 2)
  tt.ok(p1.next_cursor)
  const p2 = await h.listLogs(u.scope, { limit: 2, cursor: p1.next_cursor })
  tt.equal(p2.data.length, 1)
  tt.equal(p2.next_cursor, null)
  tt.equal(new Set([...p1.data, ...p2.data].map((l) => l.id)).size, 3)

  const s = await h.stats(u.scope, 24)
  tt.equal(s.total, 3)
  tt.equal(s.success_rate, 1)
  tt.match(s.groups, [{ sync_type: 'user', status: 'success', count: 3 }])
  tt.match(s.by_type, [{ sync_type: 'user', count: 3, success_rate: 1 }])
  await tt.rejects(h.stats(u.scope, -1), { code: 'validation_failed' })
})

t.test('no sync logged an unexpected internal error (injected crashes excepted)', async (tt) => {
  tt.same(internalErrors, [])
})
