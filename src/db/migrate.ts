import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Database } from './database.ts'

export const MIGRATIONS_DIR = new URL('../../supabase/migrations/', import.meta.url).pathname

export interface MigrationFile {
  version: string
  name: string
  sql: string
  checksum: string
}

export interface MigrationLogger {
  info(obj: object, msg: string): void
}

// Supabase CLI layout: <timestamp>_<name>.sql, applied in version order.
export async function readMigrations (dir: string = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort()
  return Promise.all(files.map(async (file) => {
    const sql = await readFile(join(dir, file), 'utf8')
    const [, version = '', name = ''] = /^(\d+)_(.+)\.sql$/.exec(file) ?? []
    return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
  }))
}

const LOCK_NAMESPACE = 741_852

/**
 * Applies pending migrations, each in its own transaction, recorded with its checksum.
 * Several replicas booting at once serialise on an advisory lock. A recorded migration whose
 * file changed stops the boot: silently diverging schemas are worse than a failed start.
 */
export async function migrate (db: Database, opts: { dir?: string, logger?: MigrationLogger } = {}): Promise<string[]> {
  const files = await readMigrations(opts.dir)
  const applied: string[] = []
  await db.query('create schema if not exists workflow_sync')
  await db.query(`create table if not exists workflow_sync.schema_migrations (
    version text primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
  )`)
  const result = await db.withAdvisoryLock(LOCK_NAMESPACE, 'migrations', async () => {
    const done = new Map((await db.query<{ version: string, checksum: string }>(
      'select version, checksum from workflow_sync.schema_migrations'
    )).rows.map((r) => [r.version, r.checksum]))
    for (const m of files) {
      const known = done.get(m.version)
      if (known !== undefined) {
        if (known !== m.checksum) {
          throw new Error(`Migration ${m.version}_${m.name}.sql was changed after it was applied (checksum differs); add a new migration instead`)
        }
        continue
      }
      await runInTransaction(db, m)
      applied.push(`${m.version}_${m.name}`)
      opts.logger?.info({ migration: `${m.version}_${m.name}` }, 'migration applied')
    }
  })
  if (!result.acquired) throw new Error('could not take the migration lock')
  return applied
}

async function runInTransaction (db: Database, m: MigrationFile): Promise<void> {
  await db.execScript(m.sql, async (tx) => {
    await tx.query('insert into workflow_sync.schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum])
  })
}
