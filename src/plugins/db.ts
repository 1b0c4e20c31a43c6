// Where the data lives, chosen once at boot (config.selectStoreMode):
//   DATABASE_URL                         → Postgres through pg (migrations applied at boot)
//   else SUPABASE_URL + SUPABASE_ANON_KEY → Supabase through supabase-js (schema checked at boot;
//                                           it is applied with `supabase db push`)
//   else                                 → embedded PGlite (migrations applied at boot)
// `app.store` is the Store every service uses. `app.db` (the Database) exists in the Postgres
// modes only: LISTEN/NOTIFY for GET /events and the tests' direct SQL.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { selectStoreMode } from '../config.ts'
import type { StoreModeChoice } from '../config.ts'
import type { Database } from '../db/database.ts'
import { migrate, readMigrations } from '../db/migrate.ts'
import { poolerWarning, TRANSACTION_POOLER_PORT } from '../db/pooler.ts'
import { openDatabase } from '../db/open-database.ts'
import { PostgresStore } from '../store/postgres-store.ts'
import type { Store } from '../store/store.ts'
import { SupabaseStore } from '../store/supabase-store.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Everything the services persist goes through it (Postgres, PGlite or Supabase). */
    store: Store
    /** The Postgres modes' database (absent in Supabase mode: check `store.kind`). */
    db: Database
  }
}

export interface DbPluginOptions {
  /** A database opened by the caller (tests, benchmarks); it is not closed with the app. */
  db?: Database
  /** A store made by the caller (tests: a SupabaseStore with its own fetch); not closed with the app. */
  store?: Store
  /** Apply pending migrations at boot (default true; Postgres modes only). */
  migrate?: boolean
}

/** The newest migration of supabase/migrations: what the Supabase project's schema must include. */
export async function expectedSchemaVersion (): Promise<string> {
  const files = await readMigrations()
  return files.at(-1)?.version ?? ''
}

async function dbPlugin (app: FastifyInstance, opts: DbPluginOptions): Promise<void> {
  const log = app.log.child({ component: 'store' })
  if (opts.store) {
    const store = opts.store
    if (store instanceof PostgresStore) app.decorate('db', store.db)
    app.decorate('store', store)
    log.info({ store: store.kind }, 'store given by the caller')
    return
  }
  if (opts.db) {
    await usePostgres(app, opts.db, false, opts.migrate !== false, { mode: opts.db.kind === 'pg' ? 'postgres' : 'embedded', reason: 'database given by the caller', warnings: [] })
    return
  }
  const choice = selectStoreMode(app.config)
  for (const w of choice.warnings) log.warn(w)
  const pooler = app.config.DATABASE_URL ? poolerWarning(app.config.DATABASE_URL) : null
  if (pooler) log.warn({ port: Number(TRANSACTION_POOLER_PORT) }, pooler)
  if (choice.mode === 'supabase') {
    const c = app.config
    const store = new SupabaseStore({
      url: c.SUPABASE_URL as string,
      anonKey: c.SUPABASE_ANON_KEY as string,
      serviceRoleKey: c.SUPABASE_SERVICE_ROLE_KEY,
      timeoutMs: c.SUPABASE_TIMEOUT_MS,
      logger: log
    })
    const expected = await expectedSchemaVersion()
    const version = await store.checkSchema(expected)
    log.info({ store: 'supabase', mode: choice.mode, schema_version: version, service_role: store.hasServiceRole }, `Supabase mode: ${choice.reason}`)
    // The trust model: user tokens read, the service key records (README: Security model).
    log.info({ store: 'supabase', service_role: store.hasServiceRole }, store.hasServiceRole
      ? 'Supabase mode: user reads go with the caller\'s token; deploy outcomes, sync results, idempotency records and locks are recorded with SUPABASE_SERVICE_ROLE_KEY'
      : 'Supabase mode: user reads go with the caller\'s token; without SUPABASE_SERVICE_ROLE_KEY, user writes, syncs and cron routes answer 503')
    app.decorate('store', store)
    app.addHook('onClose', async () => { await store.close() })
    return
  }
  await usePostgres(app, await openDatabase(app.config, app.log.child({ component: 'db' })), true, opts.migrate !== false, choice)
}

async function usePostgres (app: FastifyInstance, db: Database, owned: boolean, runMigrations: boolean, choice: StoreModeChoice): Promise<void> {
  const log = app.log.child({ component: 'store' })
  if (runMigrations) {
    const applied = await migrate(db, { logger: app.log })
    app.log.info({ database: db.kind, applied: applied.length }, 'database ready')
  }
  log.info({ store: db.kind, mode: choice.mode }, `${choice.mode === 'postgres' ? 'Postgres' : 'Embedded'} mode: ${choice.reason}`)
  const store = new PostgresStore(db)
  app.decorate('db', db)
  app.decorate('store', store)
  if (owned) {
    app.addHook('onClose', async () => { await db.close() })
  }
}

export default fp(dbPlugin, { name: 'db', dependencies: ['config'] })
