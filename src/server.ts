// The process: build the app, listen, close with grace. Nothing imports this file.
import { SignJWT } from 'jose'
import { buildApp } from './app.ts'
import { ConfigError, loadConfig } from './config.ts'
import type { Config } from './config.ts'

const DEMO_USER_ID = '00000000-0000-4000-8000-00000000d3e0'

async function demoToken (config: Config): Promise<string> {
  return new SignJWT({ role: 'authenticated', email: 'demo@example.com', aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(DEMO_USER_ID)
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(new TextEncoder().encode(config.SUPABASE_JWT_SECRET))
}

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}

const app = await buildApp({ config }).catch((err: unknown) => {
  console.error(`workflow-sync could not start: ${(err as Error).message}`)
  process.exit(1)
})

if (config.devAuth) {
  const token = await demoToken(config)
  app.log.warn('No SUPABASE_JWT_SECRET or SUPABASE_URL is configured: using a generated development secret (NODE_ENV is not production). Tokens signed with it die with this process.')
  // Printed on stdout on purpose, outside the log stream, so a person can copy it into Swagger UI.
  process.stdout.write(`\n  Demo user ${DEMO_USER_ID} — paste into Swagger UI's "Authorize" at http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}/docs\n\n  ${token}\n\n`)
}

let closing = false
async function shutdown (signal: string): Promise<void> {
  if (closing) return
  closing = true
  app.log.info({ signal }, 'shutting down')
  const timer = setTimeout(() => {
    app.log.error('shutdown took too long; exiting')
    process.exit(1)
  }, config.SHUTDOWN_TIMEOUT_MS + 1000)
  timer.unref()
  try {
    await app.close()
    process.exit(0)
  } catch (err) {
    app.log.error({ err }, 'error while closing')
    process.exit(1)
  }
}
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.on('SIGINT', () => { void shutdown('SIGINT') })

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}
