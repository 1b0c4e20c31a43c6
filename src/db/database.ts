// The database seen by the store: a server Postgres through `pg`, or embedded PGlite.
// Both run the same migrations and the same row-level security.

export interface QueryResult<R> {
  rows: R[]
  rowCount: number
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>
}

export interface UserClaims {
  sub: string
  role: 'authenticated'
  [k: string]: unknown
}

export interface Listener {
  /** UNLISTEN and give the connection back. */
  close(): Promise<void>
  /** Drop the connection without a round trip (it is believed dead). */
  abort(): void
}

export interface PoolStats {
  total: number
  idle: number
  waiting: number
  max: number
}

export interface Database {
  readonly kind: 'pg' | 'pglite'
  /**
   * Statements as the connecting owner (migrations, health checks, the service's bookkeeping
   * reads). With `name`, a prepared statement: parsed and planned once per connection (for a hot
   * statement whose text never changes; the name must be unique to that text).
   */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], opts?: { name?: string }): Promise<QueryResult<R>>
  /** Runs a multi-statement script, then fn, in one transaction as the owner (migrations). */
  execScript(script: string, fn?: (tx: Queryable) => Promise<void>): Promise<void>
  /** A transaction as role `authenticated` with `request.jwt.claims` set, as PostgREST does. */
  withUser<T>(claims: UserClaims, fn: (tx: Queryable) => Promise<T>): Promise<T>
  /**
   * One read statement under RLS as `authenticated`, in a single round trip (the claims and the
   * statement travel together as one implicitly transactional simple query). For hot read paths.
   */
  readAsUser<R = Record<string, unknown>>(claims: UserClaims, sql: string, params?: unknown[]): Promise<QueryResult<R>>
  /** A transaction as role `service_role` (bypasses RLS): cron work only. */
  asService<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /**
   * Runs fn while holding a session-level advisory lock on (namespace, key); with `wait: false`
   * answers `{ acquired: false }` at once when another session holds it.
   */
  withAdvisoryLock<T>(namespace: number, key: string, fn: () => Promise<T>, opts?: { wait?: boolean, timeoutMs?: number }): Promise<{ acquired: true, value: T } | { acquired: false }>
  /**
   * LISTEN on a channel on a connection of its own. `onLost` is called at most once, when that
   * connection dies (the caller listens again and catches up); the listener is then released.
   */
  listen(channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<Listener>
  /** NOTIFY on a channel (the events' liveness probe, which must come back through their LISTEN). */
  notify(channel: string, payload: string): Promise<void>
  poolStats(): PoolStats
  close(): Promise<void>
}

export function claimsSql (): string {
  return "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"
}

/**
 * Inlines parameters as SQL literals for the simple query protocol (which takes no parameters).
 * Strings go through the driver's literal escaping (standard_conforming_strings, as on every
 * supported Postgres); numbers must be finite; objects become JSON text. Only code-owned SQL
 * templates reach this: user input is only ever a parameter value.
 */
export function inlineParams (sql: string, params: unknown[], escapeLiteral: (s: string) => string): string {
  return sql.replace(/\$(\d+)/g, (_m, n: string) => {
    const i = Number(n) - 1
    if (i < 0 || i >= params.length) throw new Error(`missing parameter $${n}`)
    const v = params[i]
    if (v === null || v === undefined) return 'NULL'
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error('non-finite number parameter')
      return String(v)
    }
    if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE'
    if (typeof v === 'string') return escapeLiteral(v)
    if (v instanceof Date) return escapeLiteral(v.toISOString())
    return escapeLiteral(JSON.stringify(v))
  })
}

const PG_UTC_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)\+00$/

/**
 * timestamptz as an ISO 8601 string. Servers running in UTC (Supabase's default) send a text form
 * that only needs its separator and zone rewritten; any other zone goes through Date.
 */
export function parseTimestamptz (v: string): string {
  // The common text form, `2025-01-08 10:00:00.123456+00`, by slicing: this runs for every
  // timestamp of every row read (five per workflow), and a regex and a replace cost ~3x as much.
  if (v.length >= 22 && v.length <= 29 && v.charCodeAt(10) === 32 && v.endsWith('+00') && FAST_UTC.test(v)) {
    const frac = v.length === 22 ? '' : v.slice(20, -3)
    return `${v.slice(0, 10)}T${v.slice(11, 19)}.${frac.length === 6 ? frac : frac.padEnd(6, '0')}Z`
  }
  const m = PG_UTC_TIMESTAMP.exec(v)
  return microseconds(m ? `${m[1]}T${m[2]}Z` : new Date(v).toISOString())
}

// `YYYY-MM-DD HH:MM:SS` then nothing or `.` and 1–6 digits, then `+00` (sticky checks, no capture).
const FAST_UTC = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\+00$/

/**
 * One precision in every answer, whatever the database: six fractional digits (Postgres stores
 * microseconds and prints them without trailing zeros; PGlite's clock ticks in milliseconds).
 */
export function microseconds (iso: string): string {
  return iso.replace(/(?:\.(\d+))?Z$/, (_m, f: string | undefined) => `.${(f ?? '').padEnd(6, '0').slice(0, 6)}Z`)
}
