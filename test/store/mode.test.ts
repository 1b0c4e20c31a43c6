// Mode selection (DATABASE_URL → Postgres; SUPABASE_URL + SUPABASE_ANON_KEY → Supabase; otherwise
// embedded PGlite), the boot messages of each mode, and the Supabase boot check.
import { Writable } from 'node:stream'
import t from 'tap'
import nock from 'nock'
import { buildApp, loggerOptions } from '../../src/app.ts'
import { selectStoreMode } from '../../src/config.ts'
import type { Config } from '../../src/config.ts'
import { readMigrations } from '../../src/db/migrate.ts'
import { expectedSchemaVersion } from '../../src/plugins/db.ts'
import { testConfig } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { startPostgrestEmulator } from '../helpers/postgrest-emulator.ts'

nock.disableNetConnect()
t.teardown(() => {
  nock.cleanAll()
  nock.enableNetConnect()
})

const base = { DATABASE_URL: undefined, SUPABASE_URL: undefined, SUPABASE_ANON_KEY: undefined, SUPABASE_SERVICE_ROLE_KEY: undefined, PGLITE_DIR: './.data/pglite' }

t.test('selectStoreMode', async (t) => {
  const pgMode = selectStoreMode({ ...base, DATABASE_URL: 'postgres://x@h/db', SUPABASE_URL: 'https://p.supabase.co', SUPABASE_ANON_KEY: 'anon' })
  t.equal(pgMode.mode, 'postgres', 'DATABASE_URL wins')
  t.match(pgMode.reason, /DATABASE_URL is set/)
  t.match(pgMode.warnings.join(), /Postgres mode wins/, 'the unused keys are pointed out')
  t.same(selectStoreMode({ ...base, DATABASE_URL: 'postgres://x@h/db' }).warnings, [])

  const sb = selectStoreMode({ ...base, SUPABASE_URL: 'https://p.supabase.co', SUPABASE_ANON_KEY: 'anon', SUPABASE_SERVICE_ROLE_KEY: 'service' })
  t.equal(sb.mode, 'supabase')
  t.match(sb.reason, /SUPABASE_URL and SUPABASE_ANON_KEY are set and DATABASE_URL is not.*supabase db push/)
  t.same(sb.warnings, [])

  const noService = selectStoreMode({ ...base, SUPABASE_URL: 'https://p.supabase.co', SUPABASE_ANON_KEY: 'anon' })
  t.equal(noService.mode, 'supabase')
  t.match(noService.warnings.join(), /SUPABASE_SERVICE_ROLE_KEY is not set: the cron routes \(POST \/sync\/all, POST \/cleanup.*answer 503 until it is set/)

  const urlOnly = selectStoreMode({ ...base, SUPABASE_URL: 'https://p.supabase.co' })
  t.equal(urlOnly.mode, 'embedded', 'a URL without the anon key: token verification only')
  t.match(urlOnly.warnings.join(), /without SUPABASE_ANON_KEY/)

  const keyOnly = selectStoreMode({ ...base, SUPABASE_ANON_KEY: 'anon' })
  t.equal(keyOnly.mode, 'embedded')
  t.match(keyOnly.warnings.join(), /without SUPABASE_URL/)

  const embedded = selectStoreMode({ ...base, PGLITE_DIR: 'memory' })
  t.equal(embedded.mode, 'embedded')
  t.match(embedded.reason, /neither DATABASE_URL nor SUPABASE_URL \+ SUPABASE_ANON_KEY is set: embedded PGlite in memory/)
  t.same(embedded.warnings, [])
})

async function bootLogs (config: Config): Promise<{ text: string, close: () => Promise<void> }> {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _e, cb) { lines.push(String(chunk)); cb() } })
  const app = await buildApp({ config, logger: { ...loggerOptions(config) as object, stream } as never })
  return { text: lines.join(''), close: () => app.close() }
}

t.test('boot message: Postgres mode', async (t) => {
  const tdb = await createTestDatabase('ws_mode')
  t.teardown(() => tdb.drop())
  const pgBoot = await bootLogs(testConfig({ DATABASE_URL: tdb.url, LOG_LEVEL: 'info' }))
  await pgBoot.close()
  t.match(pgBoot.text, /Postgres mode: DATABASE_URL is set: server Postgres through pg/)
  t.notOk(pgBoot.text.includes(tdb.url), 'the database URL is not logged')
  // (The embedded boot logs `Embedded mode: <reason>` the same way; booting PGlite here would add
  // ~5 s under load, and its reason text is checked in selectStoreMode above.)
})

t.test('Supabase mode boot: the schema check stops a boot without the schema, telling to run supabase db push', async (t) => {
  const tdb = await createTestDatabase('ws_mode_sb')
  t.teardown(() => tdb.drop())
  const emu = await startPostgrestEmulator(tdb.url)
  t.teardown(() => emu.stop())
  const config = testConfig({ SUPABASE_URL: emu.url, SUPABASE_ANON_KEY: emu.anonKey, SUPABASE_JWT_SECRET: '', LOG_LEVEL: 'info' })
  const ok = await bootLogs(config)
  await ok.close()
  t.match(ok.text, /Supabase mode: SUPABASE_URL and SUPABASE_ANON_KEY are set/)
  t.match(ok.text, /SUPABASE_SERVICE_ROLE_KEY is not set: the cron routes/)
  t.notOk(ok.text.includes(emu.anonKey), 'the anon key is not logged')

  await tdb.db.query("create or replace function public.workflow_sync_schema_version() returns text language sql as $$ select '20250101000000'::text $$")
  await t.rejects(buildApp({ config, logger: false }), /schema is at 20250101000000 but this service needs \d{14}: run `supabase db push`/)
  await tdb.db.query('drop function public.workflow_sync_schema_version()')
  await t.rejects(buildApp({ config, logger: false }), /has no workflow-sync schema.*run `supabase link --project-ref <ref>` then `supabase db push`/)
})

t.test('the schema version the Supabase boot check expects is the newest migration, and the migrations say so', async (t) => {
  const files = await readMigrations()
  const newest = files.at(-1)!.version
  t.equal(await expectedSchemaVersion(), newest)
  const tdb = await createTestDatabase('ws_mode_v')
  t.teardown(() => tdb.drop())
  const r = await tdb.db.query<{ v: string }>('select public.workflow_sync_schema_version() as v')
  t.equal(r.rows[0]?.v, newest, 'every new migration must redefine workflow_sync_schema_version() with its own version')
})
