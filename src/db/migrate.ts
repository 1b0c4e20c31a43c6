import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Database, Queryable } from './database.ts'

export const MIGRATIONS_DIR = new URL('../../supabase/migrations/', import.meta.url).pathname

export interface MigrationFile {
  version: string
  name: string
  sql: string
  checksum: string
}

export interface MigrationLogger {
  info(obj: object, msg: string): void
  warn?(obj: object, msg: string): void
}

// Supabase CLI layout: <timestamp>_<name>.sql, applied in version order.
export async function readMigrations (dir: string = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort()
  return Promise.all(files.map(async (file) => {
    const sql = await readFile(join(dir, file), 'utf8')
    const [, version = '', name = ''] = /^(\d+)_(.+)\.sql$/.exec(file) ?? []
    return { version, name, sql, checksum: checksumOf(sql) }
  }))
}

export function checksumOf (sql: string): string {
  return createHash('sha256').update(sql).digest('hex')
}

const LOCK_NAMESPACE = 741_852

// The Supabase CLI's history table, as `supabase db push` (2.x) creates and fills it: one row per
// version, with the file's name and its statements. Created the same way here, so whichever tool
// comes first, the other one reads the same history.
const SUPABASE_HISTORY = [
  'create schema if not exists supabase_migrations',
  'create table if not exists supabase_migrations.schema_migrations (version text not null primary key)',
  'alter table supabase_migrations.schema_migrations add column if not exists statements text[]',
  'alter table supabase_migrations.schema_migrations add column if not exists name text'
]

export interface MigrateResult {
  /** `<version>_<name>` of each file applied now. */
  applied: string[]
  /** Versions `supabase db push` applied that this runner now records (with their checksum). */
  adopted: string[]
  /** Versions in the Supabase history with no file here (e.g. the Edge Function era's 20250108). */
  unknown: string[]
}

/**
 * Applies pending migrations, each in its own transaction, recorded in BOTH histories: the
 * service's own (workflow_sync.schema_migrations, with each file's checksum) and the Supabase CLI's
 * (supabase_migrations.schema_migrations). A version either one records counts as applied: a
 * database pushed with `supabase db push` is not migrated again (its versions are adopted into the
 * service's history), and one migrated here is up to date for `supabase db push`.
 * Several replicas booting at once serialise on an advisory lock (a session-level lock: it needs a
 * session connection, not the transaction pooler). A recorded migration whose file changed stops
 * the boot: silently diverging schemas are worse than a failed start.
 */
export async function migrate (db: Database, opts: { dir?: string, logger?: MigrationLogger } = {}): Promise<string[]> {
  return (await migrateWithReport(db, opts)).applied
}

export async function migrateWithReport (db: Database, opts: { dir?: string, logger?: MigrationLogger } = {}): Promise<MigrateResult> {
  const files = await readMigrations(opts.dir)
  const out: MigrateResult = { applied: [], adopted: [], unknown: [] }
  await db.query('create schema if not exists workflow_sync')
  await db.query(`create table if not exists workflow_sync.schema_migrations (
    version text primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
  )`)
  const result = await db.withAdvisoryLock(LOCK_NAMESPACE, 'migrations', async () => {
    for (const sql of SUPABASE_HISTORY) await db.query(sql)
    const done = new Map((await db.query<{ version: string, checksum: string }>(
      'select version, checksum from workflow_sync.schema_migrations'
    )).rows.map((r) => [r.version, r.checksum]))
    const pushed = new Set((await db.query<{ version: string }>(
      'select version from supabase_migrations.schema_migrations'
    )).rows.map((r) => r.version))
    const local = new Set(files.map((f) => f.version))
    out.unknown = [...pushed].filter((v) => !local.has(v)).sort()
    if (out.unknown.length > 0) {
      opts.logger?.warn?.({ versions: out.unknown }, `the Supabase migration history has versions with no file in supabase/migrations (${out.unknown.join(', ')}); supabase db push stops on them until they are marked reverted: supabase migration repair --status reverted ${out.unknown.join(' ')} --db-url <DATABASE_URL> (README, "Migrations")`)
    }
    for (const m of files) {
      const known = done.get(m.version)
      if (known !== undefined) {
        if (known !== m.checksum) {
          throw new Error(`Migration ${m.version}_${m.name}.sql was changed after it was applied (checksum differs); add a new migration instead`)
        }
        // Applied by an earlier version of this runner, before it wrote the Supabase history.
        if (!pushed.has(m.version)) await recordSupabase(db, m)
        continue
      }
      if (pushed.has(m.version)) {
        // Applied by `supabase db push`: recorded, not run again; its checksum guards it from now on.
        await db.query('insert into workflow_sync.schema_migrations (version, name, checksum) values ($1, $2, $3) on conflict (version) do nothing', [m.version, m.name, m.checksum])
        out.adopted.push(`${m.version}_${m.name}`)
        opts.logger?.info({ migration: `${m.version}_${m.name}` }, 'migration already applied by supabase db push; recorded')
        continue
      }
      await runInTransaction(db, m)
      out.applied.push(`${m.version}_${m.name}`)
      opts.logger?.info({ migration: `${m.version}_${m.name}` }, 'migration applied')
    }
  })
  if (!result.acquired) throw new Error('could not take the migration lock')
  return out
}

async function recordSupabase (tx: Queryable, m: MigrationFile): Promise<void> {
  // The whole file as one statement: the CLI only compares versions (statements serve
  // `supabase migration fetch`, which then writes the file back as it is).
  await tx.query('insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, array[$3::text]) on conflict (version) do nothing', [m.version, m.name, m.sql])
}

async function runInTransaction (db: Database, m: MigrationFile): Promise<void> {
  await db.execScript(m.sql, async (tx) => {
    await tx.query('insert into workflow_sync.schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum])
    await recordSupabase(tx, m)
  })
}
