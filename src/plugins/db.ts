import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../db/database.ts'
import { migrate } from '../db/migrate.ts'
import { openDatabase } from '../db/open-database.ts'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
  }
}

export interface DbPluginOptions {
  /** A database opened by the caller (tests, benchmarks); it is not closed with the app. */
  db?: Database
  /** Apply pending migrations at boot (default true). */
  migrate?: boolean
}

async function dbPlugin (app: FastifyInstance, opts: DbPluginOptions): Promise<void> {
  const owned = !opts.db
  const db = opts.db ?? await openDatabase(app.config)
  if (opts.migrate !== false) {
    const applied = await migrate(db, { logger: app.log })
    app.log.info({ database: db.kind, applied: applied.length }, 'database ready')
  }
  app.decorate('db', db)
  if (owned) {
    app.addHook('onClose', async () => { await db.close() })
  }
}

export default fp(dbPlugin, { name: 'db', dependencies: ['config'] })
