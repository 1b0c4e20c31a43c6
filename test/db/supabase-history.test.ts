// One migration history for both tools, with the real Supabase CLI (supabase@2.117.0 from npm):
// a database pushed with `supabase db push` boots without the service re-applying anything, a
// database the service migrated is up to date for `supabase db push`, and a database of the Edge
// Function era (history version 20250108, the guide's schema, rows with counts) upgrades in place
// by either path. Also `npm run migrate` with only DATABASE_URL under NODE_ENV=production.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { Test } from 'tap'
import { migrateWithReport, readMigrations } from '../../src/db/migrate.ts'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { PostgresStore } from '../../src/store/postgres-store.ts'
import { serviceScope, userScope } from '../../src/store/scope.ts'
import { adminQuery, databaseUrl } from '../helpers/db.ts'

t.setTimeout(15 * 60_000)

const ROOT = new URL('../../', import.meta.url).pathname
const NODE = process.execPath
const files = await readMigrations()
const all = files.map((f) => `${f.version}_${f.name}`)

interface Bare { url: string, cliUrl: string, db: PgDatabase }

/** An empty database of our own on the shared server (dropped with the test). */
async function bareDatabase (t: Test): Promise<Bare> {
  const name = `ws_hist_${randomBytes(5).toString('hex')}`
  await adminQuery(`create database ${name}`)
  const url = databaseUrl(name)
  const db = new PgDatabase({ connectionString: url, max: 3 })
  t.teardown(async () => {
    await db.close().catch(() => {})
    await adminQuery(`drop database if exists ${name} with (force)`)
  })
  return { url, cliUrl: `${url}?sslmode=disable`, db }
}

function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number, out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, out: `${stdout}\n${stderr}` })
    })
  })
}

/** The real CLI, on this repository's supabase/migrations. */
const supabase = (...args: string[]): Promise<{ code: number, out: string }> =>
  run('npx', ['--yes', 'supabase@2.117.0', ...args, '--workdir', ROOT])

async function history (db: PgDatabase): Promise<{ cli: string[], service: string[] }> {
  const cli = (await db.query<{ version: string }>('select version from supabase_migrations.schema_migrations order by version')).rows.map((r) => r.version)
  const service = (await db.query<{ version: string }>('select version from workflow_sync.schema_migrations order by version')).rows.map((r) => r.version)
  return { cli, service }
}

t.test('supabase db push, then the service boots: nothing re-applied, the versions adopted with their checksums', async (t) => {
  const d = await bareDatabase(t)
  const push = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.equal(push.code, 0, push.out)
  for (const f of all) t.match(push.out, `Applying migration ${f}.sql`)
  const r = await migrateWithReport(d.db)
  t.same(r.applied, [], 'nothing applied again')
  t.same(r.adopted, all, 'every pushed version recorded in the service history')
  t.same(r.unknown, [])
  const checks = (await d.db.query<{ version: string, checksum: string }>('select version, checksum from workflow_sync.schema_migrations order by version')).rows
  t.same(checks.map((c) => c.checksum), files.map((f) => f.checksum), 'checksums guard them from now on')
  t.same(await migrateWithReport(d.db), { applied: [], adopted: [], unknown: [] }, 'a second boot: nothing at all')
  const again = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.match(again.out, /Remote database is up to date/)
})

t.test('the service migrates, then supabase db push: up to date', async (t) => {
  const d = await bareDatabase(t)
  const r = await migrateWithReport(d.db)
  t.same(r.applied, all)
  const h = await history(d.db)
  t.same(h.cli, files.map((f) => f.version), 'the Supabase history has every version')
  t.same(h.service, files.map((f) => f.version))
  const push = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.equal(push.code, 0, push.out)
  t.match(push.out, /Remote database is up to date/)
  t.notMatch(push.out, /Applying migration/)
  const list = await supabase('migration', 'list', '--db-url', d.cliUrl)
  t.equal(list.code, 0, list.out)
  for (const f of files) t.match(list.out, new RegExp(f.version + '`?\\s*\\|\\s*`?' + f.version), `migration list: ${f.version} local and remote`)
})

t.test('a database migrated by an earlier runner (its own history only) gets the Supabase history filled in', async (t) => {
  const d = await bareDatabase(t)
  await migrateWithReport(d.db)
  await d.db.query('delete from supabase_migrations.schema_migrations')
  const r = await migrateWithReport(d.db)
  t.same(r, { applied: [], adopted: [], unknown: [] })
  t.same((await history(d.db)).cli, files.map((f) => f.version))
})

const EDGE = await readFile(new URL('../fixtures/edge-era.sql', import.meta.url), 'utf8')
const ANN = 'a0000000-0000-4000-8000-000000000001'

async function edgeDatabase (t: Test): Promise<Bare> {
  const d = await bareDatabase(t)
  await d.db.execScript(EDGE)
  return d
}

const COUNTS = [
  { name: 'Daily report', execution_count: 7, successful_executions: 5, failed_executions: 2, status: 'deployed', n8n_workflow_id: '102', active: false },
  { name: 'Lead intake', execution_count: 42, successful_executions: 40, failed_executions: 2, status: 'deployed', n8n_workflow_id: '101', active: true },
  { name: 'Never deployed', execution_count: 0, successful_executions: 0, failed_executions: 0, status: 'pending', n8n_workflow_id: null, active: false }
]

async function assertUpgraded (t: Test, d: Bare): Promise<void> {
  const rows = (await d.db.query<Record<string, unknown>>(
    `select name, execution_count::int, successful_executions::int, failed_executions::int, status, n8n_workflow_id, active,
            description, last_execution_status, last_execution_at, created_at
       from mvp_workflows order by name`)).rows
  t.match(rows, COUNTS, 'every row and count kept (NULL counts of a never-synced row become 0)')
  t.equal(rows.length, 3)
  t.match(rows[1], { description: 'webhook to CRM', last_execution_status: 'success' })
  const logs = (await d.db.query<Record<string, unknown>>('select sync_type, status, error, duration_ms, workflows_synced from sync_logs order by created_at')).rows
  t.match(logs, [
    { sync_type: 'sync_all_workflows', status: 'error', error: 'n8n unavailable', duration_ms: 0 },
    { sync_type: 'sync_all_workflows', status: 'success', error: null, duration_ms: 812, workflows_synced: 2 }
  ], 'old sync logs kept (error_message copied into error)')
  const pub = (await d.db.query("select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'mvp_workflows'")).rows
  t.equal(pub.length, 1, 'still in the Realtime publication')
  // The service works on it: a user's list (under RLS) and a sync log written and read back.
  const store = new PostgresStore(d.db)
  const ann = userScope({ sub: ANN, role: 'authenticated' })
  const listed = await store.listWorkflows(ann, { limit: 10 })
  t.same(listed.map((w) => [w.name, w.execution_count]).sort(), [['Daily report', 7], ['Lead intake', 42]])
  await store.recordSyncLog(serviceScope, { sync_type: 'all', status: 'success', duration_ms: 5, workflows_synced: 2, workflows_failed: 0, executions_ingested: 0, error: null, details: {} })
  const seen = await store.listSyncLogs(serviceScope, { limit: 10, before: null })
  t.equal(seen.length, 3, 'the new log next to the two old ones')
}

t.test('Edge Function era → the service migrates in place; the old 20250108 is reported; then the CLI path needs one repair', async (t) => {
  const d = await edgeDatabase(t)
  const warnings: string[] = []
  const r = await migrateWithReport(d.db, { logger: { info () {}, warn (_o, msg) { warnings.push(msg) } } })
  t.same(r.applied, all, 'every migration applied over the old schema')
  t.same(r.unknown, ['20250108'])
  t.match(warnings.join('\n'), /supabase migration repair --status reverted 20250108 --db-url/)
  await assertUpgraded(t, d)

  const stopped = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.not(stopped.code, 0)
  t.match(stopped.out, /Remote migration versions not found in local migrations directory/)
  const repair = await supabase('migration', 'repair', '--status', 'reverted', '20250108', '--db-url', d.cliUrl)
  t.equal(repair.code, 0, repair.out)
  const push = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.equal(push.code, 0, push.out)
  t.match(push.out, /Remote database is up to date/, 'after the repair: nothing to push')
  t.same((await migrateWithReport(d.db)).unknown, [], 'and the service no longer warns')
})

t.test('Edge Function era → the README\'s CLI commands (repair, push), then the service boots without re-applying', async (t) => {
  const d = await edgeDatabase(t)
  const repair = await supabase('migration', 'repair', '--status', 'reverted', '20250108', '--db-url', d.cliUrl)
  t.equal(repair.code, 0, repair.out)
  const push = await supabase('db', 'push', '--db-url', d.cliUrl, '--yes')
  t.equal(push.code, 0, push.out)
  for (const f of all) t.match(push.out, `Applying migration ${f}.sql`)
  const r = await migrateWithReport(d.db)
  t.same(r.applied, [])
  t.same(r.adopted, all)
  await assertUpgraded(t, d)
})

t.test('npm run migrate: only DATABASE_URL, NODE_ENV=production', async (t) => {
  const d = await bareDatabase(t)
  const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: d.url }
  const first = await run(NODE, ['src/db/migrate-cli.ts'], env)
  t.equal(first.code, 0, first.out)
  t.match(first.out, `applied: ${all.join(', ')}`)
  t.notMatch(first.out, /JWT|SUPABASE_|N8N_|CRON/, 'asks for nothing else')
  const second = await run(NODE, ['src/db/migrate-cli.ts'], env)
  t.equal(second.code, 0, second.out)
  t.match(second.out, /database is up to date/)
  t.same((await history(d.db)).cli, files.map((f) => f.version))

  const none = await run(NODE, ['src/db/migrate-cli.ts'], { PATH: env.PATH, NODE_ENV: 'production' })
  t.equal(none.code, 1)
  t.match(none.out, /DATABASE_URL is required/)
  const pooler = await run(NODE, ['src/db/migrate-cli.ts'], { PATH: env.PATH, NODE_ENV: 'production', DATABASE_URL: 'postgres://postgres@127.0.0.1:6543/postgres' })
  t.match(pooler.out, /port 6543, Supabase's transaction pooler/, 'the transaction pooler is named')
  t.equal(pooler.code, 1, 'and nothing listens there here')
})
