// `npm run migrate`: apply pending migrations to the configured database and exit.
import { loadConfig, ConfigError } from '../config.ts'
import { migrate } from './migrate.ts'
import { openDatabase } from './open-database.ts'

try {
  const config = loadConfig(process.env, () => 'unused-for-migrations-only-unused-xx')
  const db = await openDatabase(config)
  try {
    const applied = await migrate(db, { logger: { info: (_o, _m) => {} } })
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date')
    console.log(`database: ${config.DATABASE_URL ? 'DATABASE_URL' : `embedded PGlite in ${config.PGLITE_DIR}`}`)
  } finally {
    await db.close()
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${(err as Error).message}`)
  process.exitCode = 1
}
