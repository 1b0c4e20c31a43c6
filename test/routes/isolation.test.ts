// Two users: every route with the other's id answers exactly like a missing id, lists never show
// the other's rows, and in SQL (as `authenticated` with B's claims) A's rows can be neither read
// nor written — the database's own policies decide, not only the code's filters.
import t from 'tap'
import { testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { assertProblem, nockedTestApp } from '../helpers/http.ts'
import { expectCreate } from '../helpers/n8n-nock.ts'

const { h, inject, unmatched } = await nockedTestApp(t, { cleanNockAfterEach: false })

const A = await testUser()
const B = await testUser()
const MISSING = '00000000-0000-4000-8000-0000000000aa'

async function create (u: TestUser, name: string, n8nId: string): Promise<Record<string, any>> {
  const c = expectCreate(n8nId)
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name, nodes: [{ name: 'Webhook', type: 'n8n-nodes-base.webhook' }] } })
  if (res.statusCode !== 201 || !c.scope.isDone()) throw new Error(`create failed: ${res.body}`)
  return res.json()
}

// b1 first: a cursor from A's newest row then has one of B's rows below it (see the list test).
const b1 = await create(B, 'b-one', 'n8n-b1')
const a1 = await create(A, 'a-one', 'n8n-a1')
const a2 = await create(A, 'a-two', 'n8n-a2')

const routes = (id: string): Array<{ method: 'GET' | 'PATCH' | 'DELETE' | 'POST', url: string, payload?: Record<string, unknown>, headers?: Record<string, string> }> => [
  { method: 'GET', url: `/workflows/${id}` },
  { method: 'PATCH', url: `/workflows/${id}`, payload: { name: 'hijacked' } },
  { method: 'PATCH', url: `/workflows/${id}`, payload: { name: 'hijacked' }, headers: { 'if-match': '"1"' } },
  { method: 'DELETE', url: `/workflows/${id}` },
  { method: 'POST', url: `/workflows/${id}/activate` },
  { method: 'POST', url: `/workflows/${id}/deactivate` }
]

const shape = (body: Record<string, unknown>): Record<string, unknown> => {
  const { requestId: _r, ...rest } = body
  return rest
}

t.test('every route with the other user\'s id → 404 exactly like a missing id, and no n8n call', async (t) => {
  const before = unmatched.requests.length
  for (const [caller, theirs] of [[B, a1], [A, b1]] as const) {
    const other = routes(theirs.id as string)
    const missing = routes(MISSING)
    for (let i = 0; i < other.length; i++) {
      const r = other[i]!
      const res = await inject({ ...r, headers: { ...caller.auth, ...r.headers } })
      const body = assertProblem(t, res, 404, 'not_found')
      const m = missing[i]!
      const ref = await inject({ ...m, headers: { ...caller.auth, ...m.headers } })
      assertProblem(t, ref, 404, 'not_found')
      t.same(shape(body), shape(ref.json()), `${r.method} ${r.url.replace(theirs.id as string, ':id')}: same body as a missing id`)
      t.same(Object.keys(res.headers).filter((k) => k !== 'date').sort(), Object.keys(ref.headers).filter((k) => k !== 'date').sort(), 'same headers')
    }
  }
  t.equal(unmatched.requests.length, before, 'n8n was never called')
  // Nothing changed: the owners still see their rows as they were.
  for (const [owner, w] of [[A, a1], [B, b1]] as const) {
    const res = await inject({ method: 'GET', url: `/workflows/${w.id}`, headers: owner.auth })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { name: w.name, version: 1, active: false, n8n_workflow_id: w.n8n_workflow_id })
  }
})

t.test('lists never show the other user\'s rows', async (t) => {
  const ids = async (u: TestUser, qs = ''): Promise<string[]> => {
    const res = await inject({ method: 'GET', url: `/workflows${qs}`, headers: u.auth })
    t.equal(res.statusCode, 200)
    return (res.json().data as Array<{ id: string, user_id: string }>).map((w) => {
      t.equal(w.user_id, u.id)
      return w.id
    })
  }
  t.same((await ids(A)).sort(), [a1.id, a2.id].sort())
  t.same(await ids(B), [b1.id])
  t.same(await ids(B, '?status=deployed'), [b1.id])
  t.same(await ids(B, '?active=false'), [b1.id])
  // A cursor from A's list, used by B, pages through B's rows only.
  const pageA = (await inject({ method: 'GET', url: '/workflows?limit=1', headers: A.auth })).json()
  t.ok(pageA.next_cursor)
  const res = await inject({ method: 'GET', url: `/workflows?cursor=${pageA.next_cursor}&limit=100`, headers: B.auth })
  t.equal(res.statusCode, 200)
  const paged = res.json().data as Array<{ id: string, user_id: string }>
  t.same(paged.map((w) => w.id), [b1.id], 'B\'s one row (older than A\'s), none of A\'s')
  for (const w of paged) t.equal(w.user_id, B.id)
  // A third user sees nothing at all.
  t.same(await ids(await testUser()), [])
})

t.test('in SQL, as authenticated with B\'s claims, A\'s rows can be neither read nor written', async (t) => {
  // Rows of A in every user table, written as the owner.
  await h.db.query(`insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status)
    values ($1, $2, '1', 'n8n-a1', 'success')`, [a1.id, A.id])
  await h.db.query('insert into public.sync_logs (user_id, sync_type, status) values ($1, \'manual\', \'success\')', [A.id])
  await h.db.query('insert into public.idempotency_keys (user_id, key, request_hash, expires_at) values ($1, \'k-a\', \'h\', now() + interval \'1 hour\')', [A.id])
  const asB = { sub: B.id, role: 'authenticated' as const, aud: 'authenticated' }

  await h.db.withUser(asB, async (tx) => {
    t.equal((await tx.query('select * from public.mvp_workflows where id = $1', [a1.id])).rows.length, 0, 'select by id')
    t.same((await tx.query<{ user_id: string }>('select user_id from public.mvp_workflows')).rows.map((r) => r.user_id), [B.id], 'select all: own rows only')
    t.equal((await tx.query('select * from public.workflow_executions')).rows.length, 0, 'executions')
    t.equal((await tx.query('select * from public.sync_logs')).rows.length, 0, 'sync logs')
    t.equal((await tx.query('select * from public.idempotency_keys')).rows.length, 0, 'idempotency keys')
    t.equal((await tx.query('update public.mvp_workflows set name = \'pwned\' where id = $1', [a1.id])).rowCount, 0, 'update by id')
    t.equal((await tx.query('update public.mvp_workflows set name = \'pwned\' where user_id = $1', [A.id])).rowCount, 0, 'update by user_id')
    t.equal((await tx.query('delete from public.mvp_workflows where id = $1', [a2.id])).rowCount, 0, 'delete by id')
    t.equal((await tx.query('delete from public.mvp_workflows where user_id = $1', [A.id])).rowCount, 0, 'delete by user_id')
  })
  // the service's tables are not writable with a user's token at all (trust model)
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('update public.workflow_executions set status = \'error\'')), { code: '42501' }, 'update executions')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('delete from public.idempotency_keys')), { code: '42501' }, 'delete idempotency keys')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('insert into public.mvp_workflows (user_id, name) values ($1, \'planted\')', [A.id])),
    { code: '42501', message: /row-level security/ }, 'insert with A\'s user_id')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('update public.mvp_workflows set user_id = $1 where id = $2', [A.id, b1.id])),
    { code: '42501', message: /permission denied/ }, 'moving an own row to A (user_id is not the user\'s to write)')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('insert into public.sync_logs (user_id, sync_type, status) values ($1, \'manual\', \'success\')', [A.id])),
    { code: '42501' }, 'sync log for A')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query(`insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status)
    values ($1, $2, '2', 'n8n-a1', 'success')`, [a1.id, A.id])), { code: '42501' }, 'execution for A')
  await t.rejects(h.db.withUser(asB, (tx) => tx.query('insert into public.idempotency_keys (user_id, key, request_hash, expires_at) values ($1, \'k\', \'h\', now())', [A.id])),
    { code: '42501' }, 'idempotency key for A')

  // A's rows are untouched.
  const own = await h.db.query<{ name: string }>('select name from public.mvp_workflows where user_id = $1 order by name', [A.id])
  t.same(own.rows.map((r) => r.name), ['a-one', 'a-two'])
  // And A, through the same path, does see them.
  await h.db.withUser({ sub: A.id, role: 'authenticated' }, async (tx) => {
    t.equal((await tx.query('select * from public.mvp_workflows')).rows.length, 2)
    t.equal((await tx.query('select * from public.workflow_executions')).rows.length, 1)
  })
})

t.test('in SQL, role anon and a missing claim see nothing', async (t) => {
  const tdb = h.tdb!
  const client = await tdb.db.pool.connect()
  t.teardown(() => { client.release() })
  await client.query('begin')
  await client.query('set local role anon')
  await t.rejects(client.query('select * from public.mvp_workflows'), { code: '42501' }, 'anon has no grant')
  await client.query('rollback')
  await client.query('begin')
  await client.query('set local role authenticated')
  t.equal((await client.query('select * from public.mvp_workflows')).rows.length, 0, 'authenticated without claims: no rows')
  await client.query('rollback')
})
