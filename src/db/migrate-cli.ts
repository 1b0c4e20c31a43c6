// `npm run migrate`: apply pending migrations to the database and exit. Needs only DATABASE_URL
// (NODE_ENV=production included: a migrate job has no business with JWT, n8n or cron settings);
// without it, outside production, the embedded PGlite in PGLITE_DIR.
import { migrateWithReport } from './migrate.ts'
import { PgDatabase } from './pg-database.ts'
import { PgliteDatabase } from './pglite-database.ts'
import type { Database } from './database.ts'
import { poolerWarning } from './pooler.ts'

function target (env: NodeJS.ProcessEnv): { db: () => Promise<Database>, where: string } {
  const url = env.DATABASE_URL?.trim()
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL')
    return { db: async () => new PgDatabase({ connectionString: url, max: 2 }), where: 'DATABASE_URL' }
  }
  if (env.NODE_ENV === 'production') throw new Error('DATABASE_URL is required (NODE_ENV=production): the database to migrate')
  const dir = env.PGLITE_DIR?.trim() || './.data/pglite'
  return { db: () => PgliteDatabase.open(dir === 'memory' ? undefined : dir), where: `embedded PGlite in ${dir}` }
}

try {
  const t = target(process.env)
  const warning = process.env.DATABASE_URL ? poolerWarning(process.env.DATABASE_URL) : null
  if (warning) console.error(`warning: ${warning}`)
  const db = await t.db()
  try {
    const r = await migrateWithReport(db, { logger: { info: () => {}, warn: (_o, msg) => { console.error(`warning: ${msg}`) } } })
    if (r.adopted.length) console.log(`already applied by supabase db push (recorded): ${r.adopted.join(', ')}`)
    console.log(r.applied.length ? `applied: ${r.applied.join(', ')}` : 'database is up to date')
    console.log(`database: ${t.where}`)
  } finally {
    await db.close()
  }
} catch (err) {
  console.error(`migration failed: ${(err as Error).message}`)
  process.exitCode = 1
}
