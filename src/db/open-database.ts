import type { Config } from '../config.ts'
import type { Database } from './database.ts'
import { PgDatabase } from './pg-database.ts'
import { PgliteDatabase } from './pglite-database.ts'

export async function openDatabase (config: Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'PGLITE_DIR'>): Promise<Database> {
  if (config.DATABASE_URL) {
    return new PgDatabase({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_MAX })
  }
  return PgliteDatabase.open(config.PGLITE_DIR === 'memory' ? undefined : config.PGLITE_DIR)
}
