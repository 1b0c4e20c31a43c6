import type { Config } from '../config.ts'
import type { Database } from './database.ts'
import { PgDatabase } from './pg-database.ts'
import type { PgDatabaseOptions } from './pg-database.ts'
import { PgliteDatabase } from './pglite-database.ts'
import { isTransactionPooler } from './pooler.ts'

type DbConfig = Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'PGLITE_DIR'> & Partial<Pick<Config, 'DATABASE_CONNECT_TIMEOUT_MS' | 'DATABASE_STATEMENT_TIMEOUT_MS'>>

export async function openDatabase (config: DbConfig, logger?: PgDatabaseOptions['logger']): Promise<Database> {
  if (config.DATABASE_URL) {
    return new PgDatabase({
      connectionString: config.DATABASE_URL,
      max: config.DATABASE_POOL_MAX,
      preparedStatements: !isTransactionPooler(config.DATABASE_URL),
      ...(config.DATABASE_CONNECT_TIMEOUT_MS ? { connectionTimeoutMillis: config.DATABASE_CONNECT_TIMEOUT_MS } : {}),
      ...(config.DATABASE_STATEMENT_TIMEOUT_MS ? { statementTimeoutMillis: config.DATABASE_STATEMENT_TIMEOUT_MS } : {}),
      ...(logger ? { logger } : {})
    })
  }
  return PgliteDatabase.open(config.PGLITE_DIR === 'memory' ? undefined : config.PGLITE_DIR)
}
