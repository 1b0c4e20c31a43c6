import t from 'tap'
import { createTestDatabase } from '../helpers/db.ts'

const A = '11111111-1111-4111-8111-111111111111'
const B = '22222222-2222-4222-8222-222222222222'

t.test('readAsUser: one round trip under RLS, parameters inlined safely', async (t) => {
  const tdb = await createTestDatabase()
  t.teardown(() => tdb.drop())
  const db = tdb.db
  const nasty = "it's \\ a \"name\"; drop table mvp_workflows; -- $1 \\' '' E'x'"
  await db.withUser({ sub: A, role: 'authenticated' }, (tx) => tx.query('insert into mvp_workflows (user_id, name) values ($1, $2)', [A, nasty]))
  const mine = await db.readAsUser<{ name: string }>({ sub: A, role: 'authenticated' }, 'select name from mvp_workflows where user_id = $1 and name = $2', [A, nasty])
  t.same(mine.rows.map((r) => r.name), [nasty], 'a string with quotes, backslashes and $1 round-trips exactly')
  const other = await db.readAsUser({ sub: B, role: 'authenticated' }, 'select * from mvp_workflows')
  t.equal(other.rows.length, 0, 'RLS applies: B sees none of A\'s rows even without a filter')
  const asB = await db.readAsUser({ sub: B, role: 'authenticated' }, 'select * from mvp_workflows where user_id = $1', [A])
  t.equal(asB.rows.length, 0, 'asking for A\'s user id as B finds nothing')
  const after = await db.query<{ claims: string, role: string }>("select coalesce(current_setting('request.jwt.claims', true), '') as claims, current_user as role")
  t.same(after.rows[0], { claims: '', role: 'postgres' }, 'nothing leaks into the pooled connection afterwards')
  const injected = await db.readAsUser<{ n: number }>({ sub: A, role: 'authenticated' }, 'select count(*)::int as n from mvp_workflows where name = $1', ["x' or '1'='1"])
  t.equal(injected.rows[0]?.n, 0, 'a quote in a value cannot widen the query')
  await t.rejects(db.readAsUser({ sub: A, role: 'authenticated' }, 'select $1::int', [Number.NaN]), /non-finite/)
  const counts = await db.readAsUser<{ n: number, b: boolean, j: { k: string } }>({ sub: A, role: 'authenticated' }, 'select $1::int as n, $2::boolean as b, $3::jsonb as j', [42, true, { k: "v'" }])
  t.same(counts.rows[0], { n: 42, b: true, j: { k: "v'" } }, 'numbers, booleans and JSON objects')
})
