// A Postgres cluster of our own (initdb in a temporary folder, a free port), for tests and the
// chaos script that stop and start the database under a running app. The shared server on 5432
// is never touched: other tests use it.
//
// initdb and postgres refuse to run as root, so when this process is root every binary runs as
// the `postgres` OS user (su), and the temporary folder is handed to that user.
import { execFile } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

function binDir (): string {
  const base = '/usr/lib/postgresql'
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length === 0) throw new Error('no Postgres binaries under /usr/lib/postgresql/*/bin (set PG_BIN_DIR)')
  return join(base, versions[0]!, 'bin')
}

/** A TCP port nobody listens on right now. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => { resolve(port) })
    })
  })
}

function pgUser (): { uid: number, gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null
  // the postgres OS user's ids, from the owner of its home (the Debian package creates it)
  const home = '/var/lib/postgresql'
  const st = statSync(home)
  return { uid: st.uid, gid: st.gid }
}

function shellQuote (s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`
}

export interface PrivateCluster {
  port: number
  dir: string
  /** postgres://postgres@127.0.0.1:port/<db> */
  url(db?: string): string
  start(): Promise<void>
  /** `fast` disconnects clients with 57P01 (admin shutdown); `immediate` is a crash. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  /** Runs one SQL statement through psql as postgres (create database...). */
  sql(statement: string, db?: string): Promise<string>
  /** Stops (if running) and removes the folder. */
  destroy(): Promise<void>
  readonly running: boolean
}

export async function createPrivateCluster (opts: { maxConnections?: number } = {}): Promise<PrivateCluster> {
  const bin = binDir()
  const dir = mkdtempSync(join(tmpdir(), 'ws-pg-'))
  const data = join(dir, 'data')
  const owner = pgUser()
  if (owner) {
    chownSync(dir, owner.uid, owner.gid)
    chmodSync(dir, 0o700)
  }
  const exec = async (file: string, args: string[]): Promise<string> => {
    if (owner) {
      const cmd = [join(bin, file), ...args].map(shellQuote).join(' ')
      const { stdout } = await run('su', ['postgres', '-s', '/bin/sh', '-c', cmd], { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
      return stdout
    }
    const { stdout } = await run(join(bin, file), args, { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  }
  await exec('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C'])
  const port = await freePort()
  const options = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-k ${dir}`, `-c max_connections=${opts.maxConnections ?? 200}`,
    '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c shared_buffers=32MB'
  ].join(' ')
  let running = false
  const cluster: PrivateCluster = {
    port,
    dir,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    get running () { return running },
    async start () {
      await exec('pg_ctl', ['-D', data, '-l', join(dir, 'log.txt'), '-o', options, '-w', '-t', '60', 'start'])
      running = true
    },
    async stop (mode = 'fast') {
      await exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'])
      running = false
    },
    async sql (statement, db = 'postgres') {
      return exec('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-Atc', statement])
    },
    async destroy () {
      if (running) await cluster.stop('immediate').catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    }
  }
  await cluster.start()
  return cluster
}
