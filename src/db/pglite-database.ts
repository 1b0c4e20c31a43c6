import { mkdirSync } from 'node:fs'
import { PGlite, types } from '@electric-sql/pglite'
import { Semaphore } from '../lib/semaphore.ts'
import { claimsSql, parseTimestamptz } from './database.ts'
import type { Database, Listener, PoolStats, Queryable, QueryResult, UserClaims } from './database.ts'

// PGlite 0.5 ignores constructor-level parsers: they go with every query.
const queryOptions = {
  parsers: {
    [types.INT8]: (v: string) => Number(v),
    [types.TIMESTAMPTZ]: parseTimestamptz
  }
}

export class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const
  readonly db: PGlite
  // PGlite is one Postgres backend in this process: every statement and transaction takes this
  // single slot, in order, so an open RLS transaction is never shared with another request's statements.
  private readonly mutex = new Semaphore(1)
  private readonly locks = new Map<string, Semaphore>()

  private constructor (db: PGlite) {
    this.db = db
  }

  static async open (dataDir: string | undefined): Promise<PgliteDatabase> {
    if (dataDir) mkdirSync(dataDir, { recursive: true })
    const db = new PGlite(dataDir)
    await db.waitReady
    return new PgliteDatabase(db)
  }

  // `name` (a prepared statement) is for server Postgres's round trips; PGlite runs in process.
  query<R> (sql: string, params?: unknown[], _opts?: { name?: string }): Promise<QueryResult<R>> {
    return this.mutex.run(async () => {
      const res = await this.db.query<R>(sql, params as unknown[], queryOptions)
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length }
    })
  }

  execScript (script: string, fn?: (tx: Queryable) => Promise<void>): Promise<void> {
    return this.mutex.run(() => this.db.transaction(async (t) => {
      await t.exec(script)
      if (fn) await fn({ query: async <R>(sql: string, params?: unknown[]) => { const r = await t.query<R>(sql, params as unknown[], queryOptions); return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length } } })
    }))
  }

  withUser<T> (claims: UserClaims, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('authenticated', JSON.stringify(claims), fn)
  }

  readAsUser<R> (claims: UserClaims, sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    return this.withUser(claims, (tx) => tx.query<R>(sql, params))
  }

  asService<T> (fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('service_role', JSON.stringify({ role: 'service_role' }), fn)
  }

  private transaction<T> (role: string, claimsJson: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.mutex.run(() => this.db.transaction(async (t) => {
      await t.query(claimsSql(), [role, claimsJson])
      const tx: Queryable = {
        query: async <R>(sql: string, params?: unknown[]) => {
          const res = await t.query<R>(sql, params as unknown[], queryOptions)
          return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length }
        }
      }
      return fn(tx)
    }))
  }

  async withAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean } = {}): Promise<{ acquired: true, value: T } | { acquired: false }> {
    // One process owns an embedded database, so an in-process lock is the whole truth.
    const id = `${namespace}:${key}`
    let lock = this.locks.get(id)
    if (!lock) {
      lock = new Semaphore(1)
      this.locks.set(id, lock)
    }
    const held = lock
    if (opts.wait === false && (held.waiting > 0 || this.busy.has(id))) return { acquired: false }
    return held.run(async () => {
      this.busy.add(id)
      try {
        return { acquired: true as const, value: await fn() }
      } finally {
        this.busy.delete(id)
      }
    })
  }

  private readonly busy = new Set<string>()

  // In-process: the connection cannot be lost, so onLost is never called.
  async notify (channel: string, payload: string): Promise<void> {
    await this.query('select pg_notify($1, $2)', [channel, payload])
  }

  async listen (channel: string, onPayload: (payload: string) => void, _onLost: (err: Error) => void): Promise<Listener> {
    const unsub = await this.db.listen(channel, onPayload)
    let closed = false
    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      await unsub()
    }
    return { close, abort () { void close().catch(() => {}) } }
  }

  poolStats (): PoolStats {
    return { total: 1, idle: this.mutex.waiting === 0 ? 1 : 0, waiting: this.mutex.waiting, max: 1 }
  }

  async close (): Promise<void> {
    await this.db.close()
  }
}
