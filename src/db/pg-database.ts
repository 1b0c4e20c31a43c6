import pg from 'pg'
import { AppError } from '../services/errors.ts'
import { Semaphore } from '../lib/semaphore.ts'
import { claimsSql, inlineParams, isConnectionError, parseTimestamptz } from './database.ts'
import type { Database, Listener, PoolStats, Queryable, QueryResult, UserClaims } from './database.ts'

// bigint columns (counts) as numbers; timestamps as ISO strings so answers need no conversion.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, parseTimestamptz)

export interface PgDatabaseOptions {
  connectionString: string
  max?: number
  connectionTimeoutMillis?: number
  statementTimeoutMillis?: number
  applicationName?: string
}

export class PgDatabase implements Database {
  readonly kind = 'pg' as const
  readonly pool: pg.Pool
  private readonly max: number

  constructor (opts: PgDatabaseOptions) {
    this.max = opts.max ?? 10
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: this.max,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMillis ?? 15_000,
      application_name: opts.applicationName ?? 'workflow-sync'
    })
    // Session advisory locks are held for a whole deploy or sync while that work runs its own
    // transactions: they get connections of their own, so lock holders can never starve the pool
    // their work needs. (A session lock needs a session: use a direct or session-mode pooler URL.)
    this.lockPool = new pg.Pool({
      connectionString: opts.connectionString,
      max: this.max,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000,
      idleTimeoutMillis: 30_000,
      application_name: `${opts.applicationName ?? 'workflow-sync'}:locks`
    })
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', () => {})
    this.lockPool.on('error', () => {})
    this.lockSlots = new Semaphore(this.max)
  }

  private readonly lockPool: pg.Pool
  // Lock holders beyond the lock pool's size wait here, in order, instead of timing out on connect.
  private readonly lockSlots: Semaphore

  async query<R> (sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    try {
      const res = await this.pool.query(sql, params as unknown[])
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 }
    } catch (err) {
      throw mapDbError(err)
    }
  }

  async execScript (script: string, fn?: (tx: Queryable) => Promise<void>): Promise<void> {
    const client = await this.pool.connect().catch((err: unknown) => { throw mapDbError(err) })
    try {
      await client.query('begin')
      await client.query(script)
      if (fn) await fn({ query: async <R>(sql: string, params?: unknown[]) => { const r = await client.query(sql, params as unknown[]); return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 } } })
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => {})
      throw mapDbError(err)
    } finally {
      client.release()
    }
  }

  withUser<T> (claims: UserClaims, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('authenticated', JSON.stringify(claims), fn)
  }

  async readAsUser<R> (claims: UserClaims, sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    const text = `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${pg.escapeLiteral(JSON.stringify(claims))}, true);\n${inlineParams(sql, params, pg.escapeLiteral)}`
    try {
      const res = await this.pool.query(text) as unknown as pg.QueryResult[]
      const last = res[res.length - 1]!
      return { rows: last.rows as R[], rowCount: last.rowCount ?? 0 }
    } catch (err) {
      throw mapDbError(err)
    }
  }

  asService<T> (fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('service_role', JSON.stringify({ role: 'service_role' }), fn)
  }

  private async transaction<T> (role: string, claimsJson: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw mapDbError(err)
    }
    let broken = false
    // The connection dying between two statements must not be an uncaught 'error' event (the
    // next statement fails and the transaction is rolled back by the server anyway).
    const onError = (): void => { broken = true }
    client.on('error', onError)
    try {
      await client.query('begin')
      await client.query(claimsSql(), [role, claimsJson])
      const tx: Queryable = {
        query: async <R>(sql: string, params?: unknown[]) => {
          const res = await client.query(sql, params as unknown[])
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 }
        }
      }
      const value = await fn(tx)
      await client.query('commit')
      return value
    } catch (err) {
      try {
        await client.query('rollback')
      } catch {
        broken = true
      }
      if (isConnectionError(err)) broken = true
      throw mapDbError(err)
    } finally {
      client.off('error', onError)
      client.release(broken)
    }
  }

  withAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean, timeoutMs?: number } = {}): Promise<{ acquired: true, value: T } | { acquired: false }> {
    return this.lockSlots.run(() => this.holdAdvisoryLock(namespace, key, fn, opts))
  }

  private async holdAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean, timeoutMs?: number }): Promise<{ acquired: true, value: T } | { acquired: false }> {
    let client: pg.PoolClient
    try {
      client = await this.lockPool.connect()
    } catch (err) {
      throw mapDbError(err)
    }
    let broken = false
    // A lock can be held for long (the live tail's leader holds it for hours): the connection dying
    // meanwhile must not become an uncaught 'error' event; the lock is gone with the session.
    const onError = (): void => { broken = true }
    client.on('error', onError)
    try {
      if (opts.wait === false) {
        const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [namespace, key])
        if (!res.rows[0]?.ok) return { acquired: false }
      } else {
        // Bounded: a holder that takes longer answers 409 rather than a hung request.
        await client.query(`set lock_timeout = ${Math.max(1, Math.round(opts.timeoutMs ?? 120_000))}`)
        try {
          await client.query('select pg_advisory_lock($1, hashtext($2))', [namespace, key])
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') {
            throw new AppError('conflict', 'Another operation on this resource is still running; retry shortly', { headers: { 'retry-after': '5' } })
          }
          throw err
        }
      }
      try {
        return { acquired: true, value: await fn() }
      } finally {
        try {
          await client.query('select pg_advisory_unlock($1, hashtext($2))', [namespace, key])
        } catch {
          // a lost connection releases the lock with the session
          broken = true
        }
      }
    } catch (err) {
      if (isConnectionError(err)) broken = true
      throw err instanceof AppError ? err : mapDbError(err)
    } finally {
      client.off('error', onError)
      client.release(broken)
    }
  }

  /**
   * One dedicated pooled client, with its own `error`/`end` handlers: a checked-out pg client that
   * loses its connection emits `error`, which with no handler would crash the process, and the
   * loss must be reported so the caller can listen again and catch up.
   */
  async listen (channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<Listener> {
  const client = await this.pool.connect()
  let done = false
  const onNotification = (msg: pg.Notification): void => {
    if (!done && msg.channel === channel) onPayload(msg.payload ?? '')
  }
  const lose = (err: Error): void => {
    if (done) return
    done = true
    detach()
    client.release(err)
    onLost(err)
  }
  const onError = (err: Error): void => { lose(err) }
  const onEnd = (): void => { lose(new Error('LISTEN connection ended')) }
  function detach (): void {
    client.off('notification', onNotification)
    client.off('end', onEnd)
    // keep an error handler until the pool takes the client back (it adds its own on release)
    client.off('error', onError)
    client.on('error', () => {})
  }
  client.on('notification', onNotification)
  client.on('error', onError)
  client.on('end', onEnd)
  try {
    await client.query(`listen ${pg.escapeIdentifier(channel)}`)
  } catch (err) {
    if (!done) {
      done = true
      detach()
      client.release(err as Error)
    }
    throw err
  }
  return {
    async close () {
      if (done) return
      done = true
      client.off('notification', onNotification)
      client.off('end', onEnd)
      try {
        await client.query(`unlisten ${pg.escapeIdentifier(channel)}`)
        client.off('error', onError)
        client.release()
      } catch (err) {
        detach()
        client.release(err as Error)
      }
    },
    abort () {
      if (done) return
      done = true
      detach()
      client.release(new Error('LISTEN connection aborted'))
    }
  }
  }

  poolStats (): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max: this.max }
  }

  /**
   * Ends both pools. A client still checked out (work abandoned at the shutdown deadline) would
   * keep pool.end() waiting forever, so the wait is bounded; the process exits right after.
   */
  async close (timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([Promise.all([this.pool.end(), this.lockPool.end()]), bound])
    clearTimeout(timer)
  }
}

/** Connection failures become 503 database_unavailable; everything else passes through. */
export function mapDbError (err: unknown): unknown {
  if (err instanceof AppError) return err
  if (isConnectionError(err)) {
    return new AppError('database_unavailable', 'The database is unavailable; try again shortly', { cause: err })
  }
  return err
}
