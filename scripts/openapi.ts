// Builds the spec from the routes' zod schemas, exactly as the running service serves it.
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { PgliteDatabase } from '../src/db/pglite-database.ts'

export const OPENAPI_PATH = new URL('../openapi/openapi.json', import.meta.url).pathname

export async function generateOpenapi (): Promise<string> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', SUPABASE_JWT_SECRET: 'x'.repeat(32), LIVE_SYNC_INTERVAL_MS: '0' })
  const db = await PgliteDatabase.open(undefined)
  try {
    const app = await buildApp({ config, logger: false, testing: { db, migrate: false, swaggerUi: false } })
    try {
      return `${JSON.stringify(app.swagger(), null, 2)}\n`
    } finally {
      await app.close()
    }
  } finally {
    await db.close()
  }
}
