// A fresh Postgres database per test file (created from the real server, migrated), dropped at the end.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { migrate } from '../../src/db/migrate.ts'

export const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export function databaseUrl (name: string): string {
  const u = new URL(ADMIN_URL)
  u.pathname = `/${name}`
  return u.toString()
}

/** One statement on the admin database (create/drop database), on a connection of its own. */
export async function adminQuery (sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(sql)
  } finally {
    await admin.end()
  }
}

export interface TestDatabase {
  name: string
  url: string
  db: PgDatabase
  drop(): Promise<void>
}

export async function createTestDatabase (prefix = 'ws_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  await adminQuery(`create database ${name}`)
  const url = databaseUrl(name)
  const db = new PgDatabase({ connectionString: url, max: 10 })
  await migrate(db)
  let dropped = false
  return {
    name,
    url,
    db,
    async drop () {
      if (dropped) return
      dropped = true
      await db.close().catch(() => {})
      await adminQuery(`drop database if exists ${name} with (force)`)
    }
  }
}
