// The trust model, enforced by the database (README: Security model), probed as PostgREST runs a
// request, on the normal test Postgres AND on a cluster shaped like a real Supabase project
// (its roles, auth schema, default privileges that grant every new object to anon and
// authenticated, Realtime publication, postgres a non-superuser), where the service's migrations
// run as `postgres`. Building that cluster must succeed: if it cannot be built, this test fails.
import t from 'tap'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { migrate } from '../../src/db/migrate.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { directAccessMatrix } from '../helpers/direct-access.ts'
import { startSupabaseCluster } from '../helpers/supabase-cluster.ts'

// Building the Supabase-shaped cluster (initdb + ~120 bootstrap files) takes 15-60 s on a busy machine.
t.setTimeout(600_000)

t.test('test Postgres', async (t) => {
  const tdb = await createTestDatabase('ws_trust')
  t.teardown(() => tdb.drop())
  await directAccessMatrix(t, tdb.url, 'test Postgres')
})

t.test('a Supabase-shaped cluster (migrations applied as postgres, a non-superuser)', async (t) => {
  const started = Date.now()
  const cluster = await startSupabaseCluster()
  t.comment(`Supabase-shaped cluster built in ${Date.now() - started} ms`)
  t.teardown(() => cluster.stop())
  const db = new PgDatabase({ connectionString: cluster.url('postgres') })
  t.teardown(() => db.close())
  const who = await db.query<{ su: boolean, acl: number }>(
    'select (select rolsuper from pg_roles where rolname = current_user) as su, (select count(*)::int from pg_default_acl) as acl')
  t.same(who.rows[0]?.su, false, 'postgres is not a superuser there')
  t.ok((who.rows[0]?.acl ?? 0) > 0, 'default privileges are in place')
  const applied = await migrate(db)
  t.ok(applied.length >= 6, `${applied.length} migrations applied`)
  const pub = await db.query("select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'mvp_workflows'")
  t.equal(pub.rows.length, 1, 'mvp_workflows is in the Realtime publication')
  await directAccessMatrix(t, cluster.url('postgres'), 'Supabase-shaped')
})
