import pg from 'pg'
import { AppError } from '../services/errors.ts'
import { claimsSql, isConnectionError } from './database.ts'
import type { Database, PoolStats, Queryable, QueryResult, UserClaims } from './database.ts'

// bigint columns (counts) as numbers; timestamps as ISO strings so answers need no conversion.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v: string) => new Date(v).toISOString())

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
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', () => {})
  }

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
      client.release(broken)
    }
  }

  async withAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean } = {}): Promise<{ acquired: true, value: T } | { acquired: false }> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw mapDbError(err)
    }
    let broken = false
    try {
      if (opts.wait === false) {
        const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [namespace, key])
        if (!res.rows[0]?.ok) return { acquired: false }
      } else {
        await client.query('select pg_advisory_lock($1, hashtext($2))', [namespace, key])
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
      client.release(broken)
    }
  }

  async listen (channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    const client = await this.pool.connect()
    const handler = (msg: pg.Notification) => {
      if (msg.channel === channel) onPayload(msg.payload ?? '')
    }
    client.on('notification', handler)
    await client.query(`listen ${pg.escapeIdentifier(channel)}`)
    return async () => {
      client.off('notification', handler)
      try {
        await client.query(`unlisten ${pg.escapeIdentifier(channel)}`)
        client.release()
      } catch {
        client.release(true)
      }
    }
  }

  poolStats (): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max: this.max }
  }

  async close (): Promise<void> {
    await this.pool.end()
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
