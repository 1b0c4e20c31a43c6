import t from 'tap'
import { createTestDatabase } from '../helpers/db.ts'
import { migrate, readMigrations } from '../../src/db/migrate.ts'
import { PgliteDatabase } from '../../src/db/pglite-database.ts'

t.test('migrations apply to a plain Postgres, are recorded with checksums and re-run cleanly', async (t) => {
  const tdb = await createTestDatabase()
  t.teardown(() => tdb.drop())
  const files = await readMigrations()
  const rows = (await tdb.db.query<{ version: string, checksum: string }>('select version, checksum from workflow_sync.schema_migrations order by version')).rows
  t.same(rows.map((r) => r.version), files.map((f) => f.version))
  t.same(rows.map((r) => r.checksum), files.map((f) => f.checksum))
  t.same(await migrate(tdb.db), [], 'nothing pending on a second run')
  // every file is itself re-runnable (supabase db push may have applied it first)
  for (const f of files) await tdb.db.execScript(f.sql)
  const rls = (await tdb.db.query<{ relname: string, relrowsecurity: boolean }>(
    "select relname, relrowsecurity from pg_class where relname in ('mvp_workflows','sync_logs','workflow_executions') order by relname")).rows
  t.same(rls.map((r) => r.relrowsecurity), [true, true, true], 'RLS enabled on all three tables')
  const pub = (await tdb.db.query("select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'mvp_workflows'")).rows
  t.equal(pub.length, 1, 'mvp_workflows is in the supabase_realtime publication')
})

t.test('a changed migration file stops the boot', async (t) => {
  const tdb = await createTestDatabase()
  t.teardown(() => tdb.drop())
  await tdb.db.query("update workflow_sync.schema_migrations set checksum = 'x' where version = (select min(version) from workflow_sync.schema_migrations)")
  await t.rejects(migrate(tdb.db), /was changed after it was applied/)
})

t.test('migrations apply to embedded PGlite with the same RLS', async (t) => {
  const db = await PgliteDatabase.open(undefined)
  t.teardown(() => db.close())
  await migrate(db)
  const a = '11111111-1111-4111-8111-111111111111'
  const b = '22222222-2222-4222-8222-222222222222'
  await db.withUser({ sub: a, role: 'authenticated' }, (tx) => tx.query("insert into mvp_workflows (user_id, name) values ($1, 'a')", [a]))
  const seenByB = await db.withUser({ sub: b, role: 'authenticated' }, (tx) => tx.query('select * from mvp_workflows'))
  t.equal(seenByB.rows.length, 0)
  await t.rejects(db.withUser({ sub: b, role: 'authenticated' }, (tx) => tx.query("insert into mvp_workflows (user_id, name) values ($1, 'x')", [a])), /row-level security/)
})
