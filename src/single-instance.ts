// A second `npm start` on the same port or the same embedded database folder stops before it opens
// anything, with one line that says what runs where (instead of PGlite opened twice, then a JSON
// stack from listen()). The port is probed first; the PGlite folder is held with a pid lock file.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'

export class AlreadyRunningError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AlreadyRunningError'
  }
}

function displayHost (host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
}

/** Resolves when `host:port` can be bound (then released at once); throws AlreadyRunningError when it is taken. */
export async function checkPortFree (host: string, port: number): Promise<void> {
  if (port === 0) return
  const url = `http://${displayHost(host)}:${port}`
  const inUse = await new Promise<boolean>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(true)
      else reject(err)
    })
    probe.listen({ host, port, exclusive: true }, () => { probe.close(() => resolve(false)) })
  })
  if (!inUse) return
  // Is it us? /health answers {"status":"ok"}; anything else is another program.
  let ours = false
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
    ours = res.ok && ((await res.json()) as { status?: unknown }).status === 'ok'
  } catch {}
  throw new AlreadyRunningError(ours
    ? `workflow-sync is already running on ${url} (stop it first, or set PORT to start another one)`
    : `port ${port} on ${displayHost(host)} is already in use by another program (${url}); set PORT to a free port`)
}

export const LOCK_FILE = '.workflow-sync.lock'

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Holds `dir` for this process (a file with our pid, created exclusively); a lock left by a process
 * that is gone is taken over. Answers the release function (also run at exit).
 */
export function lockDataDir (dir: string): () => void {
  const abs = resolve(dir)
  mkdirSync(abs, { recursive: true })
  const path = join(abs, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path)
        } catch {}
      }
      process.once('exit', release)
      return release
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10)
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new AlreadyRunningError(`workflow-sync is already running with PGLITE_DIR=${dir} (pid ${pid}); stop it first, or set PGLITE_DIR to another folder`)
      }
      unlinkSync(path) // stale: its process is gone
    }
  }
  throw new AlreadyRunningError(`could not lock PGLITE_DIR=${dir}`)
}
