// A Postgres cluster shaped like a new Supabase project's database, for tests: its roles (anon,
// authenticated, service_role, authenticator, supabase_admin, …), the `auth` schema with the
// tables and functions Supabase Auth creates, the default privileges that grant every new object
// in `public` to anon and authenticated, the Realtime publication, and `postgres` demoted to a
// non-superuser — built from Supabase's own bootstrap SQL (/work/shared/reference/supabase-init,
// in the order of its README).
//
// Roles are cluster-wide, so this is a cluster of its own: `initdb` in a temporary folder (as the
// `postgres` OS user when we run as root), a free port, `wal_level=logical`; never the shared
// 127.0.0.1:5432 server. Anything that goes wrong THROWS: a test that needs this shape must fail,
// not skip, when it cannot be built.
import { execFile } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export const SUPABASE_INIT_DIR = process.env.SUPABASE_INIT_DIR ?? '/work/shared/reference/supabase-init'

export interface SupabaseCluster {
  port: number
  dir: string
  /** A connection URL (trust authentication) for `role` on `database` (default postgres/postgres). */
  url(role?: string, database?: string): string
  /** Runs a SQL file (or `-c` text) with psql as `role`; throws with psql's output on failure. */
  psql(role: string, args: { file?: string, command?: string, database?: string, singleTransaction?: boolean }): Promise<string>
  stop(): Promise<void>
}

function pgBinDir (): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length === 0) throw new Error(`supabase-cluster: no PostgreSQL binaries under ${root} (set PG_BIN_DIR)`)
  return join(root, versions[0]!, 'bin')
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => { typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')) })
    })
  })
}

function shellQuote (s: string): string {
  return `'${s.replace(/'/g, '\'\\\'\'')}'`
}

/** Runs a program as the `postgres` OS user when we are root (initdb refuses root), else as us. */
async function asPostgresUser (bin: string, args: string[]): Promise<string> {
  try {
    if (userInfo().uid === 0) {
      const cmd = [bin, ...args].map(shellQuote).join(' ')
      const { stdout, stderr } = await run('su', ['postgres', '-s', '/bin/sh', '-c', cmd], { maxBuffer: 16 * 1024 * 1024 })
      return stdout + stderr
    }
    const { stdout, stderr } = await run(bin, args, { maxBuffer: 16 * 1024 * 1024 })
    return stdout + stderr
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, message?: string }
    throw new Error(`supabase-cluster: ${bin} failed: ${e.message ?? ''}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

function sqlFiles (dir: string, suffix = '.sql'): string[] {
  // byte order, as the image's shell glob in the C locale
  return readdirSync(dir).filter((f) => f.endsWith(suffix)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((f) => join(dir, f))
}

/**
 * Builds and starts the cluster (a few seconds of initdb plus Supabase's ~120 bootstrap files).
 * Build it once per test file and stop it in teardown.
 */
export async function startSupabaseCluster (opts: { initDir?: string } = {}): Promise<SupabaseCluster> {
  const initDir = opts.initDir ?? SUPABASE_INIT_DIR
  if (!existsSync(join(initDir, 'postgres', 'init-scripts'))) throw new Error(`supabase-cluster: ${initDir} has no postgres/init-scripts`)
  const bin = pgBinDir()
  const dir = mkdtempSync(join(tmpdir(), 'ws-supabase-'))
  const data = join(dir, 'data')
  if (userInfo().uid === 0) {
    // the postgres OS user owns the folder (initdb and the server run as it)
    const ids = (await run('id', ['-u', 'postgres'])).stdout.trim()
    const gid = (await run('id', ['-g', 'postgres'])).stdout.trim()
    chownSync(dir, Number(ids), Number(gid))
  }
  chmodSync(dir, 0o700)
  const port = await freePort()
  let started = false
  const url = (role = 'postgres', database = 'postgres'): string => `postgres://${role}@127.0.0.1:${port}/${database}`

  const psql = async (role: string, a: { file?: string, command?: string, database?: string, singleTransaction?: boolean }): Promise<string> => {
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', role, '-d', a.database ?? 'postgres']
    if (a.singleTransaction) args.push('-1')
    if (a.file !== undefined) args.push('-f', a.file)
    if (a.command !== undefined) args.push('-c', a.command)
    try {
      const { stdout, stderr } = await run('psql', args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } })
      return stdout + stderr
    } catch (err) {
      const e = err as { stdout?: string, stderr?: string }
      throw new Error(`supabase-cluster: psql as ${role}${a.file ? ` -f ${a.file}` : ''} failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`)
    }
  }

  const stop = async (): Promise<void> => {
    if (started) {
      started = false
      await asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {})
    }
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    // initdb with the bootstrap superuser supabase_admin (as the image does)
    await asPostgresUser(join(bin, 'initdb'), ['-D', data, '-U', 'supabase_admin', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8'])
    await asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c wal_level=logical -c fsync=off -c max_connections=60`, 'start'])
    started = true

    await psql('supabase_admin', { command: 'create role postgres superuser login; alter database postgres owner to postgres;' })
    // One psql session per role and phase (\\i of each file, in order), not one process per file:
    // the same statements in the same order, a few processes instead of ~120.
    const script = (name: string, lines: string[]): string => {
      const f = join(dir, name)
      writeFileSync(f, lines.join('\n') + '\n')
      chmodSync(f, 0o644)
      return f
    }
    const include = (f: string): string => `\\i '${f.replace(/'/g, "''")}'`
    const copy = (f: string, text: string): string => {
      const out = join(dir, `copy-${f.slice(f.lastIndexOf('/') + 1)}`)
      writeFileSync(out, text)
      chmodSync(out, 0o644)
      return out
    }
    const init: string[] = []
    for (const f of sqlFiles(join(initDir, 'postgres', 'init-scripts'))) {
      if (f.endsWith('00000000000000-initial-schema.sql')) {
        // the README's one skipped statement: pgjwt is not installed here
        const text = readFileSync(f, 'utf8')
        const kept = text.split('\n').filter((l) => !/^\s*create extension if not exists pgjwt\b/i.test(l)).join('\n')
        if (kept === text) throw new Error('supabase-cluster: the pgjwt line of the initial schema was not found (the vendored SQL changed?)')
        init.push(include(copy(f, kept)))
      } else {
        init.push(include(f))
      }
    }
    await psql('postgres', { file: script('init-scripts.sql', init) })
    // one line of the newer upstream initial-schema, which the vendored 20251215120934 needs
    await psql('supabase_admin', { command: 'create user supabase_etl_admin with login replication;' })
    // skipped (README): enable-safeupdate preloads safeupdate, which is not installed (authenticator could not log in)
    const migrations = sqlFiles(join(initDir, 'postgres', 'migrations')).filter((f) => !f.endsWith('_enable-safeupdate-postgrest.sql'))
    await psql('supabase_admin', { file: script('migrations.sql', migrations.map(include)) })
    // Supabase Auth's own migrations, as supabase_auth_admin, each in a transaction, recorded.
    // GoTrue's migrations are templates: the namespace placeholder becomes `auth`.
    const auth: string[] = []
    for (const f of sqlFiles(join(initDir, 'auth'), '.up.sql')) {
      const version = /^(\d+)/.exec(f.slice(f.lastIndexOf('/') + 1))?.[1] ?? ''
      const text = readFileSync(f, 'utf8').replace(/\{\{\s*index\s+\.Options\s+"Namespace"\s*\}\}/g, 'auth')
      auth.push('begin;', include(copy(f, text)), `insert into auth.schema_migrations (version) values ('${version}') on conflict do nothing;`, 'commit;')
    }
    await psql('supabase_auth_admin', { file: script('auth.sql', auth) })
    const check = await psql('supabase_admin', { command: "select rolsuper from pg_roles where rolname = 'postgres'" })
    if (!/\bf\b/.test(check)) throw new Error(`supabase-cluster: postgres is still a superuser (${check.trim()})`)
  } catch (err) {
    let log = ''
    try { log = (await run('tail', ['-n', '40', join(dir, 'server.log')])).stdout } catch {}
    await stop()
    throw new Error(`${(err as Error).message}${log ? `\nserver log:\n${log}` : ''}`)
  }
  return { port, dir, url, psql, stop }
}
