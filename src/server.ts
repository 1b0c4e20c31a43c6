// The process: build the app, listen, close with grace. Nothing imports this file.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { buildApp } from './app.ts'
import { ConfigError, loadConfig, selectStoreMode } from './config.ts'
import { AlreadyRunningError, checkPortFree, lockDataDir } from './single-instance.ts'
import type { Config } from './config.ts'
import { loadDevSecret } from './dev-secret.ts'
import type { DevSecret } from './dev-secret.ts'
import { DEMO_USER_ID, demoToken } from './services/demo-user.ts'

let config: Config
let devSecret: DevSecret | null = null
try {
  config = loadConfig(process.env, (env) => {
    devSecret = loadDevSecret(env)
    return devSecret.secret
  })
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}

// `npm start` passes --env-file-if-exists=.env: say whether it was there (the real environment wins).
const envFile = process.execArgv.some((a) => a.startsWith('--env-file')) && existsSync('.env') ? resolve('.env') : null

// Before anything is opened: a second start on the same port or embedded database says so in one line.
try {
  await checkPortFree(config.HOST, config.PORT)
  if (!config.DATABASE_URL && config.PGLITE_DIR !== 'memory' && selectStoreMode(config).mode === 'embedded') lockDataDir(config.PGLITE_DIR)
} catch (err) {
  console.error(err instanceof AlreadyRunningError ? err.message : `workflow-sync could not start: ${(err as Error).message}`)
  process.exit(1)
}

const app = await buildApp({ config }).catch((err: unknown) => {
  console.error(`workflow-sync could not start: ${(err as Error).message}`)
  process.exit(1)
})
app.log.info(envFile ? `settings read from ${envFile} (variables already in the environment win)` : 'no .env file read; settings come from the environment')

// SIGTERM/SIGINT: stop accepting, let in-flight requests and tracked work finish within
// SHUTDOWN_TIMEOUT_MS (src/plugins/lifecycle.ts), close event streams and pools, exit 0.
// A close that overruns the bound by 2 s exits with 1.
let closing = false
async function shutdown (signal: string): Promise<void> {
  // Repeated signals are ignored: `npm start` under a terminal delivers Ctrl-C twice (the
  // terminal's process group and npm's forwarding); the bound below ends a stuck close anyway.
  if (closing) return
  closing = true
  const started = performance.now()
  app.log.info({ signal, timeout_ms: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down')
  const timer = setTimeout(() => {
    app.log.error({ timeout_ms: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown overran its bound; exiting')
    process.exit(1)
  }, config.SHUTDOWN_TIMEOUT_MS + 2000)
  timer.unref()
  try {
    await app.close()
    app.log.info({ signal, duration_ms: Math.round(performance.now() - started) }, 'shutdown complete')
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
  // Taken between the probe and now: still one line, no stack.
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') console.error(`port ${config.PORT} on ${config.HOST} is already in use (is workflow-sync already running?); set PORT to a free port`)
  else app.log.error({ err }, 'could not listen')
  await app.close().catch(() => {})
  process.exit(1)
}

if (config.devAuth) {
  const token = await demoToken(config.SUPABASE_JWT_SECRET!)
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  const kept = devSecret as DevSecret | null
  app.log.warn(kept?.path
    ? `No SUPABASE_JWT_SECRET or SUPABASE_URL is configured: using a generated development secret (NODE_ENV is not production), kept in ${kept.path} (${kept.created ? 'created now' : 'reused'}), so tokens signed with it stay valid across restarts; delete the file to invalidate them.`
    : 'No SUPABASE_JWT_SECRET or SUPABASE_URL is configured: using a generated development secret (NODE_ENV is not production). It is not kept (PGLITE_DIR=memory or a server database): tokens signed with it die with this process.')
  // Printed on stdout on purpose, outside the log stream, so a person can copy it into Swagger UI.
  process.stdout.write(`\n  Demo user ${DEMO_USER_ID} (valid 12 h) — the dashboard at http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}/ signs in as it at once; in /docs press "Authorize" and paste:\n\n  ${token}\n\n`)
}
