// public.is_final and public.count_category (20250118000000_sql_helpers.sql): their answers, their
// grants, and that the planner inlines them (a helper that could not be inlined would be a function
// call per ledger row and would no longer match the partial index of open rows).
import t from 'tap'
import { createTestDatabase } from '../helpers/db.ts'

t.test('is_final and count_category', async (t) => {
  const tdb = await createTestDatabase('ws_sql_helpers')
  t.teardown(() => tdb.drop())
  const db = tdb.db
  const statuses = ['success', 'error', 'crashed', 'canceled', 'waiting', 'running', 'new', 'unknown', 'Success']
  const r = await db.query<{ s: string, f: boolean, c: string | null }>(
    'select s, public.is_final(s) as f, public.count_category(s) as c from unnest($1::text[]) with ordinality u(s, i) order by i', [statuses])
  t.same(r.rows, [
    { s: 'success', f: true, c: 'success' },
    { s: 'error', f: true, c: 'failed' },
    { s: 'crashed', f: true, c: 'failed' },
    { s: 'canceled', f: true, c: 'canceled' },
    { s: 'waiting', f: false, c: null },
    { s: 'running', f: false, c: null },
    { s: 'new', f: false, c: null },
    { s: 'unknown', f: false, c: null },
    { s: 'Success', f: false, c: null }
  ], 'final statuses and their count categories; every other status is open and counts nothing')
  const nul = await db.query<{ f: boolean | null, c: string | null }>('select public.is_final(null) as f, public.count_category(null) as c')
  t.same(nul.rows[0], { f: null, c: null }, 'null in, null out (as the inline lists they replace)')

  const fns = await db.query<{ sig: string, vol: string, cfg: string[] | null, auth: boolean, anon: boolean, svc: boolean, pub: boolean }>(
    `select p.oid::regprocedure::text as sig, p.provolatile as vol, p.proconfig as cfg,
            has_function_privilege('authenticated', p.oid, 'execute') as auth, has_function_privilege('anon', p.oid, 'execute') as anon,
            has_function_privilege('service_role', p.oid, 'execute') as svc,
            exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0) as pub
       from pg_proc p where p.oid in ('public.is_final(text)'::regprocedure, 'public.count_category(text)'::regprocedure) order by 1`)
  t.same(fns.rows, [
    { sig: 'count_category(text)', vol: 'i', cfg: null, auth: false, anon: false, svc: true, pub: false },
    { sig: 'is_final(text)', vol: 'i', cfg: null, auth: true, anon: false, svc: true, pub: false }
  ], 'IMMUTABLE, no SET clause (inlinable); is_final for the service and for users (workflows_with_open_rows runs as them), count_category for the service only')

  // Inlined: the plan shows the list itself, not a call, and the partial index of open rows
  // (whose predicate is the list) serves `not is_final(status)`; planned as a user, since
  // inlining needs the caller's EXECUTE (workflows_with_open_rows runs as them).
  const plan = await db.withUser({ sub: '11111111-1111-4111-8111-111111111111', role: 'authenticated' }, async (tx) => {
    await tx.query('set local enable_seqscan = off')
    await tx.query('set local enable_bitmapscan = off')
    const p = await tx.query<{ 'QUERY PLAN': string }>(
      "explain verbose select x.id from public.workflow_executions x where x.workflow_id = '00000000-0000-4000-8000-000000000000' and not public.is_final(x.status) and x.vanished_at is null")
    return p.rows.map((row) => row['QUERY PLAN']).join('\n')
  })
  t.match(plan, /workflow_executions_open_idx/, 'the open-rows index serves not is_final(status)')
  t.notMatch(plan, /is_final/, 'no call to is_final is left in the plan')
  const cat = await db.asService((tx) => tx.query<{ 'QUERY PLAN': string }>("explain verbose select public.count_category(s) from (values ('error'), ('x')) v(s)"))
  t.notMatch(cat.rows.map((row) => row['QUERY PLAN']).join('\n'), /count_category/, 'count_category is inlined too')
})
