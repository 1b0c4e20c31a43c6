import t from 'tap'
import nock from 'nock'
import { buildTestApp, cronAuth, N8N_TEST_ORIGIN, testUser } from '../helpers/app.ts'

const old = new Date(Date.now() - 3 * 3600_000).toISOString()
const fresh = new Date(Date.now() - 60_000).toISOString()

function wf (id: string, name: string, updatedAt: string, staticData: Record<string, unknown> | null = null) {
  return { id, name, active: false, nodes: [], connections: {}, settings: {}, staticData, createdAt: updatedAt, updatedAt }
}

t.test('cleanup: orphans past the grace period go, everything else stays; retention keeps counts', async (t) => {
  const h = await buildTestApp({ env: { CLEANUP_GRACE_MINUTES: '60', SYNC_LOG_RETENTION_DAYS: '30', EXECUTION_RETENTION_DAYS: '90' } })
  t.teardown(() => h.close())
  t.teardown(() => nock.cleanAll())
  const u = await testUser()
  const prefix = `[USR-${u.id.replace(/-/g, '').slice(0, 8)}]`
  // an owned workflow (row has its n8n id), and a pending row whose create is in flight (marker)
  // (as the service: status, n8n ids and counts are the service's to write)
  const owned = await h.db.asService(async (tx) => {
    const a = await tx.query<{ id: string }>("insert into mvp_workflows (user_id, name, status, n8n_workflow_id, execution_count, successful_executions) values ($1, 'owned', 'deployed', 'n-owned', 7, 7) returning id", [u.id])
    const b = await tx.query<{ id: string }>("insert into mvp_workflows (user_id, name, status) values ($1, 'in flight', 'pending') returning id", [u.id])
    return { ownedId: a.rows[0]!.id, pendingId: b.rows[0]!.id }
  })
  // ledger rows and logs older than retention
  await h.db.asService(async (tx) => {
    // 1: old, below the stop point → purged; 2: recent → kept; 3: old but above the stop point (a
    // sync may still read it from n8n) → kept, so it can never be counted twice
    await tx.query(`insert into workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_execution_seq, n8n_workflow_id, status, finished, started_at, stopped_at)
      values ($1, $2, '1', 1, 'n-owned', 'success', true, now() - interval '200 days', now() - interval '200 days'),
             ($1, $2, '2', 2, 'n-owned', 'success', true, now() - interval '1 day', now() - interval '1 day'),
             ($1, $2, '3', 3, 'n-owned', 'success', true, now() - interval '200 days', now() - interval '200 days')`, [owned.ownedId, u.id])
    await tx.query('update mvp_workflows set execution_floor_id = 2 where id = $1', [owned.ownedId])
    await tx.query("insert into sync_logs (user_id, sync_type, status, created_at) values ($1, 'user', 'success', now() - interval '40 days'), ($1, 'user', 'success', now())", [u.id])
  })
  const listing = [
    wf('n-owned', `${prefix} owned`, old),
    wf('n-old-orphan', `${prefix} gone`, old),
    wf('n-young-orphan', `${prefix} young`, fresh),
    wf('n-marker', `${prefix} in flight`, old, { workflow_sync: { row_id: owned.pendingId, user_id: u.id } }),
    wf('n-manual', 'A workflow someone made by hand', old)
  ]

  // dry run: lists, changes nothing
  const dryList = nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).reply(200, { data: listing, nextCursor: null })
  const dry = await h.app.inject({ method: 'POST', url: '/cleanup', headers: cronAuth, payload: { dry_run: true } })
  t.equal(dry.statusCode, 200, dry.body)
  const d = dry.json()
  t.ok(dryList.isDone())
  t.same(d.orphans_deleted.map((o: { n8n_workflow_id: string }) => o.n8n_workflow_id), ['n-old-orphan'])
  t.same(d.orphans_in_grace.map((o: { n8n_workflow_id: string }) => o.n8n_workflow_id), ['n-young-orphan'])
  t.same(d.purged, { sync_logs: 1, executions: 1, idempotency_keys: 0, workflow_events: 0 })
  t.equal(d.sync_log_id, null, 'a dry run writes no log row')
  const afterDry = await h.db.asService((tx) => tx.query<{ n: number }>('select (select count(*) from workflow_executions)::int + (select count(*) from sync_logs)::int as n'))
  t.equal(afterDry.rows[0]!.n, 5, 'dry run deleted nothing')

  // real run: exactly one DELETE, for the old orphan
  nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).reply(200, { data: listing, nextCursor: null })
  const del = nock(N8N_TEST_ORIGIN).delete('/api/v1/workflows/n-old-orphan').reply(200, listing[1])
  const real = await h.app.inject({ method: 'POST', url: '/cleanup', headers: cronAuth, payload: {} })
  t.equal(real.statusCode, 200, real.body)
  const r = real.json()
  t.ok(del.isDone(), 'the old orphan was deleted in n8n')
  t.equal(r.status, 'success')
  t.same(r.orphans_deleted.map((o: { n8n_workflow_id: string }) => o.n8n_workflow_id), ['n-old-orphan'])
  t.same(r.purged, { sync_logs: 1, executions: 1, idempotency_keys: 0, workflow_events: 0 })
  t.ok(nock.pendingMocks().length === 0, 'no other n8n call was made')
  const counts = await h.db.asService((tx) => tx.query<{ execution_count: number, successful_executions: number }>('select execution_count, successful_executions from mvp_workflows where id = $1', [owned.ownedId]))
  t.same(counts.rows[0], { execution_count: 7, successful_executions: 7 }, 'purging the ledger keeps the counts')
  const log = await h.db.asService((tx) => tx.query<{ sync_type: string, status: string }>('select sync_type, status from sync_logs where id = $1', [r.sync_log_id]))
  t.same(log.rows[0], { sync_type: 'cleanup', status: 'success' }, 'a cleanup sync_logs row')
})

t.test('cleanup: cron only; compat action maps to it; n8n down is reported, retention still runs', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  t.teardown(() => nock.cleanAll())
  const u = await testUser()
  const asUser = await h.app.inject({ method: 'POST', url: '/cleanup', headers: u.auth, payload: {} })
  t.equal(asUser.statusCode, 403)
  t.equal(asUser.json().code, 'forbidden')
  const anon = await h.app.inject({ method: 'POST', url: '/cleanup', payload: {} })
  t.equal(anon.statusCode, 401)
  const compatUser = await h.app.inject({ method: 'POST', url: '/workflow-sync', headers: u.auth, payload: { action: 'cleanup_workflows' } })
  t.equal(compatUser.statusCode, 403)

  nock(N8N_TEST_ORIGIN).get('/api/v1/workflows').query(true).times(3).replyWithError(new Error('connect ECONNREFUSED'))
  const res = await h.app.inject({ method: 'POST', url: '/workflow-sync', headers: cronAuth, payload: { action: 'cleanup_workflows' } })
  t.equal(res.statusCode, 200, res.body)
  const r = res.json()
  t.equal(r.status, 'partial')
  t.equal(r.errors[0].code, 'n8n_unavailable')
  t.type(r.sync_log_id, 'string', 'the failed part is logged')
  const bad = await h.app.inject({ method: 'POST', url: '/workflow-sync', headers: cronAuth, payload: { action: 'nope' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().detail, /sync_all_workflows, cleanup_workflows/)
})

t.test('cleanup: one at a time across replicas (advisory lock)', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  // Another replica holds the cleanup lock: this one answers 409 at once and touches nothing.
  const held = await h.db.withAdvisoryLock(741_855, 'cleanup', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/cleanup', headers: cronAuth, payload: {} })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'conflict')
  })
  t.ok(held.acquired)
})
