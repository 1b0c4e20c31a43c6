// The generated development JWT secret, kept beside the embedded database so that a restart keeps
// the tokens a person pasted into Swagger UI valid. Only for the embedded PGlite on disk: in
// memory mode the data dies with the process, and so does the secret.
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { selectStoreMode } from './config.ts'
import type { Env } from './config.ts'

export const DEV_SECRET_FILE = '.dev-jwt-secret'

export interface DevSecret {
  secret: string
  /** Absolute path of the file, or null when it is not kept (memory mode, server databases). */
  path: string | null
  /** true when the file was written now (first start), false when an existing one was read. */
  created: boolean
}

/** Where the secret is kept for this configuration, or null (generated per process). */
export function devSecretPath (env: Env): string | null {
  if (env.PGLITE_DIR === 'memory' || selectStoreMode(env).mode !== 'embedded') return null
  return join(resolve(env.PGLITE_DIR), DEV_SECRET_FILE)
}

function fresh (): string {
  return randomBytes(32).toString('base64url')
}

/** Reads the kept secret, or creates the file (mode 0600); a per-process secret when none is kept. */
export function loadDevSecret (env: Env): DevSecret {
  const path = devSecretPath(env)
  if (path === null) return { secret: fresh(), path: null, created: false }
  try {
    const kept = readFileSync(path, 'utf8').trim()
    if (kept.length >= 32) return { secret: kept, path, created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const secret = fresh()
  mkdirSync(resolve(env.PGLITE_DIR), { recursive: true })
  writeFileSync(path, `${secret}\n`, { mode: 0o600 })
  chmodSync(path, 0o600) // an existing (too short) file keeps its mode otherwise
  return { secret, path, created: true }
}
