// THE contract of the Store (src/store/store.ts), one suite run against every implementation:
// server Postgres and PGlite (PostgresStore) and Supabase (SupabaseStore over the PostgREST
// emulation, whose answers a real Postgres computes). Same calls, same answers: the SQL functions
// are one definition for all three.
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { Database } from '../../src/db/database.ts'
import { AppError } from '../../src/errors.ts'
import { serviceScope, userScope } from '../../src/store/scope.ts'
import type { Scope } from '../../src/store/scope.ts'
import type { Store } from '../../src/store/store.ts'
import type { WorkflowRow } from '../../src/store/workflow-store.ts'
import type { Workflow } from '../../src/schemas/workflow.ts'
import { mintUserToken, nowSeconds } from '../helpers/tokens.ts'
import { operationTableContract } from './operation-table-contract.ts'

export interface StoreFixture {
  store: Store
  /** The database behind the store, as its owner: seeding and inspection only. */
  db: Database
  close(): Promise<void>
}

export interface TestScope {
  id: string
  scope: Scope
}

/** A signed-in user's scope, carrying an access token (the Supabase store forwards it). */
export async function newUserScope (id: string = randomUUID()): Promise<TestScope> {
  const exp = nowSeconds() + 3600
  const token = await mintUserToken({ sub: id, exp })
  return { id, scope: userScope({ sub: id, role: 'authenticated', exp, aud: 'authenticated' }, token) }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/

async function rejectsWith (t: Test, p: Promise<unknown>, code: string, msg: string): Promise<AppError | undefined> {
  try {
    await p
    t.fail(`${msg}: expected ${code}, it resolved`)
  } catch (err) {
    t.ok(err instanceof AppError, `${msg}: an AppError (${(err as Error).message})`)
    t.equal((err as AppError).code, code, msg)
    return err as AppError
  }
  return undefined
}

const input = (name: string) => ({ name, description: null, nodes: [{ name: 'Webhook', type: 'n8n-nodes-base.webhook' }], connections: {}, settings: {} })

async function created (store: Store, s: Scope, name: string): Promise<WorkflowRow> {
  const r = await store.createWorkflow(s, input(name))
  if (r.outcome !== 'created') throw new Error('not created')
  return r.workflow
}

/** A deployed workflow row, inserted as the owner (sync fixtures). */
async function seedDeployed (db: Database, userId: string, n8nId: string): Promise<string> {
  const r = await db.query<{ id: string }>(
    "insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, 'seeded', 'deployed', $2) returning id", [userId, n8nId])
  return r.rows[0]!.id
}

export function storeContract (t: Test, label: string, make: () => Promise<StoreFixture>): void {
  t.test(`Store contract: ${label}`, async (t) => {
    const f = await make()
    t.teardown(() => f.close())
    const { store, db } = f
    const table = operationTableContract(t, store, db)

    t.test('ping and kind', async (t) => {
      t.equal(await store.ping(), true)
      t.ok(['pg', 'pglite', 'supabase'].includes(store.kind))
    })

    t.test('createWorkflow: a pending, inactive row of the caller; getWorkflow reads it back identically', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const r = await store.createWorkflow(a.scope, { ...input('first'), description: 'd', settings: { timezone: 'UTC' } })
      t.equal(r.outcome, 'created')
      if (r.outcome !== 'created') return
      const w = r.workflow
      t.match(w, { user_id: a.id, name: 'first', description: 'd', status: 'pending', active: false, version: 1, deploy_attempts: 0, n8n_workflow_id: null, execution_count: 0, last_error: null })
      t.same(w.nodes, [{ name: 'Webhook', type: 'n8n-nodes-base.webhook' }])
      t.same(w.settings, { timezone: 'UTC' })
      t.match(w.created_at, ISO_UTC, 'created_at is UTC ISO 8601')
      t.match(w.updated_at, ISO_UTC)
      t.same(await store.getWorkflow(a.scope, w.id), w, 'the same row, field for field, from a table read')
      t.equal(await store.getWorkflow(b.scope, w.id), undefined, 'another user cannot see it')
      t.same(await store.getWorkflow(serviceScope, w.id), w, 'the service can')
      t.equal(await store.getWorkflow(a.scope, randomUUID()), undefined, 'absent')
      await rejectsWith(t, store.createWorkflow(serviceScope, input('x')), 'forbidden', 'the service cannot create a user\'s workflow')
    })

    t.test('listWorkflows: own rows only, newest first, keyset pages, filters', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push((await created(store, a.scope, `w${i}`)).id)
      await created(store, b.scope, 'other')
      const all = await store.listWorkflows(a.scope, { limit: 10 })
      t.same(all.map((w) => w.id), [...ids].reverse(), 'newest first')
      t.ok(all.every((w) => w.user_id === a.id))
      t.ok(all.every((w) => ISO_UTC.test(w.cursor_ts)), 'cursor_ts is UTC ISO')
      const seen: string[] = []
      let after: { createdAt: string, id: string } | undefined
      for (let page = 0; page < 4; page++) {
        const rows = await store.listWorkflows(a.scope, { limit: 2, ...(after ? { after } : {}) })
        seen.push(...rows.map((r) => r.id))
        const last = rows.at(-1)
        if (rows.length < 2 || !last) break
        after = { createdAt: last.cursor_ts, id: last.id }
      }
      t.same(seen, [...ids].reverse(), 'pages cover every row once, in order')
      await db.query("update public.mvp_workflows set status = 'deployed', active = true where id = $1", [ids[2]])
      t.same((await store.listWorkflows(a.scope, { limit: 10, status: 'deployed' })).map((w) => w.id), [ids[2]])
      t.same((await store.listWorkflows(a.scope, { limit: 10, active: true })).map((w) => w.id), [ids[2]])
      t.equal((await store.listWorkflows(a.scope, { limit: 10, active: false })).length, 4)
    })

    t.test('createWorkflow with an idempotency key: resume, replay, conflict, per user, expiry', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const claim = { key: 'key-1', requestHash: 'hash-1', ttlHours: 24 }
      const first = await store.createWorkflow(a.scope, input('idem'), claim)
      t.equal(first.outcome, 'created')
      if (first.outcome !== 'created') return
      const again = await store.createWorkflow(a.scope, input('idem'), claim)
      t.equal(again.outcome, 'resumed', 'a first request that did not finish is resumed')
      if (again.outcome === 'resumed') t.equal(again.workflow.id, first.workflow.id)
      const rec = await store.getIdempotencyRecord(a.scope, 'key-1')
      t.match(rec, { request_hash: 'hash-1', status_code: null, workflow_id: first.workflow.id, expired: false })
      const body = { ...first.workflow, status: 'deployed' } as unknown as Workflow
      await store.completeIdempotencyKey(a.scope, 'key-1', 201, body)
      const replay = await store.createWorkflow(a.scope, input('idem'), claim)
      t.equal(replay.outcome, 'replay')
      if (replay.outcome === 'replay') {
        t.equal(replay.statusCode, 201)
        t.same(replay.response, body, 'the stored answer, as stored')
      }
      await rejectsWith(t, store.createWorkflow(a.scope, input('idem'), { ...claim, requestHash: 'other' }), 'conflict', 'same key, other body')
      const theirs = await store.createWorkflow(b.scope, input('idem'), claim)
      t.equal(theirs.outcome, 'created', 'keys are per user')
      t.equal(await store.getIdempotencyRecord(b.scope, 'nope'), undefined)
      await db.query("update public.idempotency_keys set expires_at = now() - interval '1 second' where user_id = $1", [a.id])
      t.equal((await store.getIdempotencyRecord(a.scope, 'key-1'))?.expired, true)
      const fresh = await store.createWorkflow(a.scope, input('idem'), claim)
      t.equal(fresh.outcome, 'created', 'an expired key is free again')
      t.equal((await db.query('select count(*)::int as n from public.mvp_workflows where user_id = $1', [a.id])).rows[0]?.n, 2)
    })

    t.test('beginDeploy counts attempts and answers the row as it was before', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const w = await created(store, a.scope, 'deploy')
      t.equal((await store.beginDeploy(a.scope, w.id))?.deploy_attempts, 0)
      t.equal((await store.beginDeploy(a.scope, w.id))?.deploy_attempts, 1)
      t.equal(await store.beginDeploy(b.scope, w.id), undefined, 'not another user\'s')
      t.equal((await store.beginDeploy(serviceScope, w.id))?.deploy_attempts, 2, 'the service may')
      t.equal((await store.getWorkflow(a.scope, w.id))?.deploy_attempts, 3)
      t.equal(await store.beginDeploy(a.scope, randomUUID()), undefined)
    })

    t.test('recordDeployOutcome sets what it is given and keeps the rest', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const w = await created(store, a.scope, 'outcome')
      const n8nId = `n8n-${randomUUID()}`
      const d = await store.recordDeployOutcome(a.scope, w.id, { status: 'deployed', n8nWorkflowId: n8nId, lastError: null })
      t.match(d, { status: 'deployed', n8n_workflow_id: n8nId, active: false, last_error: null, version: 1 })
      const e = await store.recordDeployOutcome(a.scope, w.id, { status: 'deployed', lastError: 'could not activate', active: true })
      t.match(e, { n8n_workflow_id: n8nId, active: true, last_error: 'could not activate' }, 'absent keys keep their columns')
      t.equal(await store.recordDeployOutcome(b.scope, w.id, { status: 'error', lastError: 'x' }), undefined, 'not another user\'s')
      t.match(await store.recordDeployOutcome(serviceScope, w.id, { status: 'pending', lastError: 'n8n down' }), { status: 'pending', last_error: 'n8n down' })
      const other = await created(store, a.scope, 'other')
      await rejectsWith(t, store.recordDeployOutcome(a.scope, other.id, { status: 'deployed', n8nWorkflowId: n8nId, lastError: null }), 'conflict', 'one n8n workflow per row')
    })

    t.test('updateWorkflowDefinition: version + 1; If-Match mismatch is 412; absent or another user\'s is undefined', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const w = await created(store, a.scope, 'patch')
      const u = await store.updateWorkflowDefinition(a.scope, w.id, { name: 'renamed', description: 'now described', settings: { timezone: 'Europe/Paris' } })
      t.match(u, { name: 'renamed', description: 'now described', version: 2 })
      t.same(u?.settings, { timezone: 'Europe/Paris' })
      t.same(u?.nodes, w.nodes, 'nodes kept')
      const v = await store.updateWorkflowDefinition(a.scope, w.id, { description: null, nodes: [] }, 2)
      t.match(v, { description: null, version: 3 })
      t.same(v?.nodes, [])
      await rejectsWith(t, store.updateWorkflowDefinition(a.scope, w.id, { name: 'stale' }, 2), 'precondition_failed', 'a stale version')
      t.equal((await store.getWorkflow(a.scope, w.id))?.name, 'renamed', 'nothing changed')
      t.equal(await store.updateWorkflowDefinition(b.scope, w.id, { name: 'hijack' }, 3), undefined, 'another user\'s: not found, not 412')
      t.equal(await store.updateWorkflowDefinition(a.scope, randomUUID(), { name: 'x' }), undefined)
    })

    t.test('setWorkflowActive follows n8n and clears a deploy error; writes nothing when nothing changes', async (t) => {
      const a = await newUserScope()
      const w = await created(store, a.scope, 'active')
      const on = await store.setWorkflowActive(a.scope, w.id, true)
      t.match(on, { active: true, version: 2 })
      const same = await store.setWorkflowActive(a.scope, w.id, true)
      t.match(same, { active: true, version: 2, updated_at: on?.updated_at }, 'no write')
      await store.recordDeployOutcome(a.scope, w.id, { status: 'deployed', lastError: 'old activation error' })
      const cleared = await store.setWorkflowActive(a.scope, w.id, true)
      t.match(cleared, { active: true, version: 2, last_error: null, status: 'deployed' })
      t.match(await store.setWorkflowActive(a.scope, w.id, false), { active: false, version: 3 })
      t.equal(await store.setWorkflowActive((await newUserScope()).scope, w.id, true), undefined)
    })

    t.test('deleteWorkflow: own rows only', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const w = await created(store, a.scope, 'bye')
      t.equal(await store.deleteWorkflow(b.scope, w.id), false)
      t.ok(await store.getWorkflow(a.scope, w.id), 'still there')
      t.equal(await store.deleteWorkflow(a.scope, w.id), true)
      t.equal(await store.deleteWorkflow(a.scope, w.id), false)
      t.equal(await store.getWorkflow(serviceScope, w.id), undefined)
    })

    t.test('workflowListStamp: moves with every change to the caller\'s rows, whoever makes it; not with another user\'s', async (t) => {
      if (store.kind === 'supabase') {
        t.equal(store.workflowListStamp, undefined, 'Supabase: no event log to stamp from (GET /workflows reads every time)')
        return
      }
      const stampOf = store.workflowListStamp!.bind(store)
      const a = await newUserScope()
      const b = await newUserScope()
      const stamps = [await stampOf(a.scope)]
      const moved = async (what: string) => {
        const now = await stampOf(a.scope)
        t.not(now, stamps[stamps.length - 1], `${what}: the stamp moved`)
        t.notOk(stamps.includes(now), `${what}: to a stamp never seen before`)
        stamps.push(now)
      }
      const w = await created(store, a.scope, 'stamped')
      await moved('create')
      t.equal(await stampOf(a.scope), stamps[stamps.length - 1], 'no change: the same stamp')
      await store.setWorkflowActive(a.scope, w.id, true)
      await moved('a recorded outcome')
      await db.query('update public.mvp_workflows set execution_count = execution_count + 1 where id = $1', [w.id])
      await moved('a write as the owner (a sync, another replica)')
      const before = await stampOf(a.scope)
      const other = await created(store, b.scope, 'someone else')
      await db.query('update public.mvp_workflows set name = name where id = $1', [other.id])
      t.equal(await stampOf(a.scope), before, 'another user\'s rows leave the stamp alone')
      await db.query('update public.mvp_workflows set user_id = $1 where id = $2', [b.id, w.id])
      await moved('a row moved to another user')
      const bBefore = await stampOf(b.scope)
      await db.query('update public.mvp_workflows set user_id = $1 where id = $2', [a.id, w.id])
      await moved('a row moved back')
      t.not(await stampOf(b.scope), bBefore, 'and the other user\'s stamp moved too')
      t.equal(await store.deleteWorkflow(a.scope, w.id), true)
      await moved('delete')
      const [x, y] = await Promise.all([stampOf(a.scope), stampOf(b.scope)])
      t.same([x, y], [await stampOf(a.scope), await stampOf(b.scope)], 'concurrent lookups answer each caller its own stamp')
    })

    t.test('withLock: one holder at a time; waits; released on errors', async (t) => {
      const a = await newUserScope()
      const wf = randomUUID()
      const lock = { name: 'deploy' as const, workflowId: wf, ownerId: a.id }
      let release!: () => void
      const held = new Promise<void>((resolve) => { release = resolve })
      let entered!: () => void
      const inside = new Promise<void>((resolve) => { entered = resolve })
      const first = store.withLock(a.scope, lock, async () => { entered(); await held; return 'first' })
      await inside
      t.same(await store.withLock(a.scope, lock, async () => 'x', { wait: false }), { acquired: false }, 'busy: no wait')
      t.same(await store.withLock(serviceScope, lock, async () => 'x', { wait: false }), { acquired: false }, 'the service sees the same lock')
      t.same(await store.withLock(a.scope, { name: 'deploy', workflowId: randomUUID(), ownerId: a.id }, async () => 'other', { wait: false }), { acquired: true, value: 'other' }, 'other keys are free')
      const order: string[] = []
      const second = store.withLock(a.scope, lock, async () => { order.push('second'); return 'second' })
      await new Promise((resolve) => setTimeout(resolve, 100))
      order.push('released')
      release()
      t.same(await first, { acquired: true, value: 'first' })
      t.same(await second, { acquired: true, value: 'second' }, 'the waiter got it')
      t.same(order, ['released', 'second'], 'only after the release')
      await t.rejects(store.withLock(a.scope, lock, async () => { throw new Error('boom') }), /boom/, 'fn errors propagate')
      t.same(await store.withLock(a.scope, lock, async () => 'after', { wait: false }), { acquired: true, value: 'after' }, 'and the lock is released')
      t.same(await store.withLock(serviceScope, { name: 'cleanup' }, async () => 'c', { wait: false }), { acquired: true, value: 'c' })
      t.same(await store.withLock(a.scope, { name: 'sync_user', ownerId: a.id }, async () => 's', { wait: false }), { acquired: true, value: 's' })
    })

    t.test('sync: targets, ingest with counts, missing, RLS', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const n8nId = `n8n-${randomUUID().slice(0, 8)}`
      const wf = await seedDeployed(db, a.id, n8nId)
      const other = await seedDeployed(db, b.id, `n8n-${randomUUID().slice(0, 8)}`)
      const mine = await store.listSyncTargets(a.scope)
      t.same(mine.map((x) => x.id), [wf], 'a user syncs their own workflows')
      t.match(mine[0], { user_id: a.id, n8n_workflow_id: n8nId, status: 'deployed', execution_floor_id: null })
      const all = await store.listSyncTargets(serviceScope, { workflowIds: [wf, other] })
      t.same(all.map((x) => x.id).sort(), [wf, other].sort(), 'the service: everyone\'s, filtered by id')
      t.same(await store.listSyncTargets(serviceScope, { workflowIds: [] }), [])
      const execs = [
        { id: '103', status: 'running', workflowId: n8nId, startedAt: '2025-01-08T10:03:00.000Z' },
        { id: '102', status: 'error', workflowId: n8nId, finished: false, startedAt: '2025-01-08T10:02:00.000Z', stoppedAt: '2025-01-08T10:02:01.000Z' },
        { id: '101', status: 'success', workflowId: n8nId, finished: true, mode: 'webhook', startedAt: '2025-01-08T10:01:00.000Z', stoppedAt: '2025-01-08T10:01:01.000Z' },
        { id: '100', status: 'success', workflowId: 'someone-else', startedAt: '2025-01-08T10:00:00.000Z' }
      ]
      const syncedAt = new Date()
      const r = await store.ingestExecutions(a.scope, wf, execs, syncedAt, { complete: true, ceiling: '103' })
      t.match(r, { inserted: 3, updated: 0, ignored: 1, delta: { execution_count: 2, successful_executions: 1, failed_executions: 1 }, floor_advanced: true, workflow_written: true })
      const again = await store.ingestExecutions(a.scope, wf, execs, syncedAt, {})
      t.match(again, { inserted: 0, updated: 0, delta: { execution_count: 0 } }, 'idempotent')
      const row = await store.getWorkflow(a.scope, wf)
      t.match(row, { execution_count: 2, successful_executions: 1, failed_executions: 1, last_execution_status: 'running' })
      t.match(row?.last_execution_at, ISO_UTC)
      await rejectsWith(t, store.ingestExecutions(b.scope, wf, execs, syncedAt), 'not_found', 'B cannot write A\'s ledger')
      t.equal(await store.markWorkflowMissing(b.scope, wf, n8nId, 'gone', syncedAt), false, 'nor mark it')
      t.equal(await store.markWorkflowMissing(a.scope, wf, n8nId, 'gone from n8n', syncedAt), true)
      t.equal(await store.markWorkflowMissing(a.scope, wf, n8nId, 'gone from n8n', syncedAt), false, 'already marked')
      t.match(await store.getWorkflow(a.scope, wf), { status: 'missing_in_n8n', last_error: 'gone from n8n' })
    })

    t.test('sync: batches, open rows, the instance scan\'s stop points', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const n1 = `n8n-${randomUUID().slice(0, 8)}`
      const n2 = `n8n-${randomUUID().slice(0, 8)}`
      const w1 = await seedDeployed(db, a.id, n1)
      const w2 = await seedDeployed(db, a.id, n2)
      const syncedAt = new Date()
      const rs = await store.ingestExecutionsBatch(a.scope, [
        { workflowId: w1, executions: [{ id: '301', status: 'success', workflowId: n1 }, { id: '302', status: 'waiting', workflowId: n1 }], options: { complete: true, ceiling: '302' } },
        { workflowId: w2, executions: [{ id: '303', status: 'error', workflowId: n2 }] }
      ], syncedAt)
      t.equal(rs.length, 2, 'one result per job, in order')
      t.match(rs[0], { inserted: 2, delta: { execution_count: 1, successful_executions: 1 }, floor_advanced: true })
      t.match(rs[1], { inserted: 1, delta: { execution_count: 1, failed_executions: 1 } })
      await rejectsWith(t, store.ingestExecutionsBatch(b.scope, [{ workflowId: w1, executions: [] }], syncedAt), 'not_found', 'all or nothing under RLS')
      t.same((await store.workflowsWithOpenRows(a.scope, [w1, w2])).sort(), [w1], 'w1 has an open (waiting) row')
      t.same(await store.workflowsWithOpenRows(b.scope, [w1, w2]), [], 'not visible to B')
      const floor1 = (await store.listSyncTargets(a.scope, { workflowIds: [w1] }))[0]?.execution_floor_id
      t.type(floor1, 'string')
      t.equal(await store.raiseScanFloors(serviceScope, [w1, w2], '900'), 1, 'only a workflow with a stop point of its own')
      t.equal(await store.raiseScanFloors(serviceScope, [w1], '800'), 0, 'never down')
      t.same((await store.listSyncTargets(a.scope, { workflowIds: [w1, w2] })).map((x) => [x.id, x.execution_floor_id]).sort(), [[w1, '900'], [w2, null]].sort(),
        'the effective stop point is the larger one; none without a pass of its own')
      await rejectsWith(t, store.raiseScanFloors(a.scope, [w1], '1000'), 'forbidden', 'scan floors are the service\'s')
      const scan = await store.ingestScanBatch(serviceScope, [
        { workflowId: w2, final: true, items: [JSON.stringify({ id: '950', status: 'success', workflowId: n2 })] }
      ], syncedAt, { ceiling: '950' })
      t.match(scan, [{ inserted: 1, delta: { execution_count: 1, successful_executions: 1 } }])
      t.match(await store.getWorkflow(a.scope, w2), { execution_count: 2, successful_executions: 1, failed_executions: 1 })
      await rejectsWith(t, store.ingestScanBatch(a.scope, [{ workflowId: w2, final: false, items: [] }], syncedAt, { ceiling: '1' }), 'forbidden', 'the scan is the service\'s')
    })

    t.test('execution history: newest first, pages, status filter, visibility', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const n8nId = `n8n-${randomUUID().slice(0, 8)}`
      const wf = await seedDeployed(db, a.id, n8nId)
      const execs = Array.from({ length: 5 }, (_, i) => ({ id: String(200 + i), status: i % 2 ? 'error' : 'success', workflowId: n8nId, startedAt: new Date(Date.UTC(2025, 0, 8, 10, i)).toISOString() }))
      await store.ingestExecutions(a.scope, wf, execs, new Date())
      const page1 = await store.listExecutionHistory(a.scope, wf, { limit: 3, beforeSeq: null, status: null })
      t.same(page1?.map((e) => e.n8n_execution_id), ['204', '203', '202'])
      t.same(page1?.map((e) => e.seq), ['204', '203', '202'], 'seq as decimal text')
      t.match(page1?.[0], { workflow_id: wf, status: 'success', finished: false })
      t.match(page1?.[0]?.started_at, ISO_UTC)
      t.match(page1?.[0]?.created_at, ISO_UTC)
      const page2 = await store.listExecutionHistory(a.scope, wf, { limit: 3, beforeSeq: '202', status: null })
      t.same(page2?.map((e) => e.n8n_execution_id), ['201', '200'])
      const errors = await store.listExecutionHistory(a.scope, wf, { limit: 10, beforeSeq: null, status: 'error' })
      t.same(errors?.map((e) => e.n8n_execution_id), ['203', '201'])
      t.equal(await store.listExecutionHistory(b.scope, wf, { limit: 10, beforeSeq: null, status: null }), undefined, 'not visible to B')
      t.equal((await store.listExecutionHistory(serviceScope, wf, { limit: 10, beforeSeq: null, status: null }))?.length, 5)
    })

    t.test('execution stats: per bucket from the ledger, visibility, all of the caller\'s', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const n1 = `n8n-${randomUUID().slice(0, 8)}`
      const n2 = `n8n-${randomUUID().slice(0, 8)}`
      const w1 = await seedDeployed(db, a.id, n1)
      const w2 = await seedDeployed(db, a.id, n2)
      const at = (h: number, m: number, s = 0) => new Date(Date.UTC(2025, 1, 3, h, m, s)).toISOString()
      await store.ingestExecutions(a.scope, w1, [
        { id: '500', status: 'success', workflowId: n1, finished: true, startedAt: at(9, 0), stoppedAt: at(9, 0, 2) },
        { id: '501', status: 'error', workflowId: n1, startedAt: at(9, 30), stoppedAt: at(9, 30, 4) },
        { id: '502', status: 'running', workflowId: n1, startedAt: at(10, 5) }
      ], new Date())
      await store.ingestExecutions(a.scope, w2, [{ id: '503', status: 'success', workflowId: n2, startedAt: at(10, 10), stoppedAt: at(10, 10, 1) }], new Date())
      // the running one finishes (the ledger row is updated)
      await store.ingestExecutions(a.scope, w1, [{ id: '502', status: 'success', workflowId: n1, finished: true, startedAt: at(10, 5), stoppedAt: at(10, 5, 6) }], new Date())
      const q = { bucket: 'hour' as const, since: new Date(at(9, 0)), until: new Date(at(11, 0)) }
      const nz = (c: Record<string, number>) => Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0))
      const one = await store.executionStats(a.scope, { ...q, workflowId: w1 })
      t.same(one?.map((r) => [r.bucket_start, nz(r.counts), r.duration_count, r.avg_duration_ms]), [
        [null, { success: 2, error: 1 }, 3, 4000],
        [at(9, 0), { success: 1, error: 1 }, 2, 3000],
        [at(10, 0), { success: 1 }, 1, 6000]
      ], 'the window first, then each non-empty bucket; the finished run moved from running to success')
      t.equal(one?.[1]?.p95_bin, 87, 'p95 of 2 s and 4 s: the bin of 4 s (floor(ln(4001) / ln(1.1)))')
      t.equal(one?.[0]?.p95_bin, null, 'no percentiles for the window')
      const all = await store.executionStats(a.scope, { ...q, workflowId: null })
      t.same(all?.map((r) => [r.bucket_start, nz(r.counts)]), [[null, { success: 3, error: 1 }], [at(9, 0), { success: 1, error: 1 }], [at(10, 0), { success: 2 }]], 'both of A\'s workflows')
      t.equal(await store.executionStats(b.scope, { ...q, workflowId: w1 }), undefined, 'not visible to B')
      t.same(await store.executionStats(b.scope, { ...q, workflowId: null }), [], 'B has none')
    })

    t.test('sync logs: recorded per caller, listed newest first in keyset pages, stats', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const log = (status: 'success' | 'partial' | 'failed', ms: number) => ({
        sync_type: 'user', status, duration_ms: ms, workflows_synced: 1, workflows_failed: status === 'success' ? 0 : 1, executions_ingested: 2, error: status === 'success' ? null : 'x', details: { n: ms }
      })
      const ids: string[] = []
      ids.push(await store.recordSyncLog(a.scope, log('success', 100)))
      ids.push(await store.recordSyncLog(a.scope, log('failed', 300)))
      ids.push(await store.recordSyncLog(a.scope, log('success', 200)))
      await store.recordSyncLog(b.scope, log('success', 50))
      const svc = await store.recordSyncLog(serviceScope, { ...log('partial', 10), sync_type: 'all', user_id: null })
      const mine = await store.listSyncLogs(a.scope, { limit: 10, before: null })
      t.same(mine.map((l) => l.id), [...ids].reverse(), 'own logs, newest first')
      t.ok(mine.every((l) => l.user_id === a.id))
      t.match(mine[0], { sync_type: 'user', status: 'success', duration_ms: 200, details: { n: 200 } })
      t.match(mine[0]?.created_at, ISO_UTC)
      const p1 = await store.listSyncLogs(a.scope, { limit: 2, before: null })
      const last = p1.at(-1)!
      const p2 = await store.listSyncLogs(a.scope, { limit: 2, before: { created: last.created_key, id: last.id } })
      t.same([...p1, ...p2].map((l) => l.id), [...ids].reverse(), 'keyset pages by created_key')
      const everyone = await store.listSyncLogs(serviceScope, { limit: 100, before: null })
      t.ok(everyone.some((l) => l.id === svc && l.user_id === null), 'the service sees its own (user_id null) and everyone\'s')
      t.ok(everyone.some((l) => l.user_id === b.id))
      const stats = await store.syncStats(a.scope, new Date(Date.now() - 3600_000))
      t.same(stats, [
        { sync_type: 'user', status: 'failed', count: 1, avg_duration_ms: 300 },
        { sync_type: 'user', status: 'success', count: 2, avg_duration_ms: 150 }
      ], 'per type and status, own only')
      t.same(await store.syncStats(a.scope, new Date(Date.now() + 3600_000)), [])
    })

    t.test('cleanup operations: service only', async (t) => {
      const a = await newUserScope()
      const n8nId = `n8n-${randomUUID().slice(0, 8)}`
      const wf = await seedDeployed(db, a.id, n8nId)
      const owned = await store.ownedN8nWorkflows(serviceScope, [n8nId, 'n8n-nobody'], [wf, randomUUID()])
      t.same([...owned.n8nIds], [n8nId])
      t.same([...owned.rowIds], [wf])
      await db.query("insert into public.sync_logs (user_id, sync_type, status, created_at) values ($1, 'user', 'success', now() - interval '40 days')", [a.id])
      const dry = await store.purgeExpiredData(serviceScope, 30, 90, true)
      t.ok(Number(dry.sync_logs) >= 1, 'dry run counts')
      t.equal(typeof dry.sync_log_cutoff, 'string')
      const done = await store.purgeExpiredData(serviceScope, 30, 90, false)
      t.equal(Number(done.sync_logs), Number(dry.sync_logs))
      t.equal(Number((await store.purgeExpiredData(serviceScope, 30, 90, true)).sync_logs), 0)
      t.equal(typeof await store.purgeEventLog(serviceScope, 24, true), 'number')
      await rejectsWith(t, store.purgeExpiredData(a.scope, 30, 90, true), 'forbidden', 'a user cannot purge')
      await rejectsWith(t, store.ownedN8nWorkflows(a.scope, [n8nId], []), 'forbidden', 'nor look at ownership')
      await rejectsWith(t, store.purgeEventLog(a.scope, 24, true), 'forbidden', 'nor purge the event log')
    })

    t.test('live tail: a claim fences the previous leader; open executions; a write', async (t) => {
      const first = await store.liveTailClaim(serviceScope, 'replica-a')
      t.match(first, { epoch: /^\d+$/, backfilled: false })
      const second = await store.liveTailClaim(serviceScope, 'replica-b')
      t.ok(BigInt(second.epoch) > BigInt(first.epoch), 'a new claim, a new epoch')
      // the open rows earlier tests left, exactly as the function answers them
      const direct = await db.query('select n8n_execution_id, n8n_workflow_id, status from public.live_tail_open_executions(1000)')
      t.ok(direct.rows.length > 0, 'earlier tests left open rows')
      t.same(await store.liveTailOpenExecutions(serviceScope, 1000), direct.rows, 'the open rows, oldest first')
      t.equal((await store.liveTailOpenExecutions(serviceScope, 1)).length, 1, 'at most the limit')
      const wrote = await store.liveTailIngest(serviceScope, second.epoch, { items: [], vanished: [], state: { frontier: '5' } }, new Date())
      t.match(wrote, { inserted: 0, updated: 0, frontier: '5' })
      await rejectsWith(t, store.liveTailIngest(serviceScope, first.epoch, { items: [], vanished: [], state: {} }, new Date()), 'conflict', 'a stale epoch is fenced')
    })

    t.test('live events: the log and the rows, under the caller\'s RLS', async (t) => {
      const a = await newUserScope()
      const b = await newUserScope()
      const start = await store.eventLogPosition(a.scope)
      t.equal(start.head, 0, 'a new user has no events')
      const row = await created(store, a.scope, 'evented')
      const events = await store.readEventLog(a.scope, 0, 10)
      t.match(events, [{ op: 'INSERT', workflow_id: row.id }], 'the insert is in the log')
      t.equal(typeof events[0]?.id, 'number')
      const pos = await store.eventLogPosition(a.scope)
      t.equal(pos.head, events[0]?.id, 'the head is the newest event')
      t.same(await store.readEventLog(a.scope, pos.head, 10), [], 'nothing after the head')
      t.same(await store.readEventLog(b.scope, 0, 10), [], 'another user sees none of them')
      const { deploy_attempts: _d, ...contract } = row
      t.same(await store.workflowsByIds(a.scope, [row.id]), [contract], 'the row, in the contract\'s shape')
      t.same(await store.workflowsByIds(b.scope, [row.id]), [], 'not another user\'s')
      t.same(await store.workflowsByIds(serviceScope, [row.id]), [contract], 'the service reads anyone\'s')
      t.same(await store.workflowsByIds(a.scope, []), [])
      await rejectsWith(t, store.eventLogPosition(serviceScope), 'forbidden', 'the log position is a user\'s')
    })

    table.check()
  })
}
