import pg from 'pg'
import { Semaphore } from '../lib/semaphore.ts'
import { ConnectLatch } from './connect-latch.ts'
import { LockSession } from './lock-session.ts'
import { claimsSql, inlineParams, parseTimestamptz } from './database.ts'
import { connectionProblem, isConnectionError, lockBusy } from './errors.ts'
import type { Database, Listener, PoolStats, Queryable, QueryResult, UserClaims } from './database.ts'

// bigint columns (counts) as numbers; timestamps as ISO strings so answers need no conversion.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v))
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, parseTimestamptz)

export interface PgDatabaseOptions {
  connectionString: string
  max?: number
  /** Longest wait for a connection: a free pool slot plus the connect itself (default 5000 ms). */
  connectionTimeoutMillis?: number
  /** Server-side statement_timeout of the request pool (default 15 000 ms). */
  statementTimeoutMillis?: number
  applicationName?: string
  /**
   * Named prepared statements (Database.query's `name`); default true. Off behind a transaction
   * pooler, where the next statement may land on a server session that never saw the prepare.
   */
  preparedStatements?: boolean
  /** Where connection losses are reported (default: nowhere; they never throw). */
  logger?: { warn(obj: object, msg?: string): void, info(obj: object, msg?: string): void }
}

const NOOP_LOG = { warn () {}, info () {} }

export class PgDatabase implements Database {
  readonly kind = 'pg' as const
  readonly pool: pg.Pool
  private readonly max: number
  private readonly prepared: boolean

  private readonly log: NonNullable<PgDatabaseOptions['logger']>
  /** Fails acquisitions at once while the database is unreachable (connect-latch.ts). */
  readonly latch: ConnectLatch

  constructor (opts: PgDatabaseOptions) {
    this.max = opts.max ?? 10
    this.prepared = opts.preparedStatements !== false
    this.log = opts.logger ?? NOOP_LOG
    const statementTimeout = opts.statementTimeoutMillis ?? 15_000
    const connectTimeout = opts.connectionTimeoutMillis ?? 5000
    const applicationName = opts.applicationName ?? 'workflow-sync'
    this.latch = new ConnectLatch({
      log: this.log,
      probe: async () => {
        const probe = new pg.Client({ connectionString: opts.connectionString, connectionTimeoutMillis: connectTimeout, application_name: `${applicationName}:probe` })
        probe.on('error', () => {})
        await probe.connect()
        await probe.end().catch(() => {})
      }
    })
    const Client = latchedClient(this.latch)
    this.pool = new pg.Pool({
      Client,
      connectionString: opts.connectionString,
      max: this.max,
      connectionTimeoutMillis: connectTimeout,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeout,
      // The client-side bound for a server that stopped answering without closing the socket
      // (statement_timeout runs on the server, so it cannot fire then): a little later than it.
      query_timeout: statementTimeout + 5000,
      application_name: applicationName
    })
    // Session advisory locks are held for a whole deploy or sync while that work runs its own
    // transactions: they get connections of their own, so lock holders can never starve the pool
    // their work needs. (A session lock needs a session: use a direct or session-mode pooler URL.)
    this.lockPool = new pg.Pool({
      Client,
      connectionString: opts.connectionString,
      max: this.max,
      connectionTimeoutMillis: connectTimeout,
      idleTimeoutMillis: 30_000,
      application_name: `${applicationName}:locks`
    })
    // A pg client whose connection dies emits 'error'; with no listener that kills the process
    // (Postgres restarting, `terminating connection due to administrator command`). pg-pool only
    // listens while a client is idle, so a client checked out by a transaction waiting on
    // something else, a lock session or the LISTEN connection would take the process down: every
    // client gets a listener of its own for its whole life, the moment it is created. Whoever
    // holds the client learns of the loss from its next query (or from its own listener).
    for (const [name, pool] of [['pool', this.pool], ['locks', this.lockPool]] as const) {
      pool.on('connect', (client) => {
        client.on('error', (err: Error) => { this.onClientError(name, err) })
      })
      pool.on('error', () => {})
    }
    this.lockSlots = new Semaphore(this.max)
  }

  /** Connection losses seen (tests, metrics). */
  readonly lost = { clients: 0, lockSessions: 0, lockReacquired: 0 }
  private lastLossLog = 0

  private onClientError (pool: string, err: Error): void {
    this.lost.clients++
    // is the server gone, or only this session? (callers queued behind held clients wait otherwise)
    this.latch.suspect()
    // one line per second at most: a restart drops every connection at once
    const now = Date.now()
    if (now - this.lastLossLog < 1000) return
    this.lastLossLog = now
    this.log.warn({ pool, err: { message: err.message, code: (err as { code?: string }).code } }, 'database connection lost')
  }

  private readonly lockPool: pg.Pool
  // Lock holders beyond the lock pool's size wait here, in order, instead of timing out on connect.
  private readonly lockSlots: Semaphore

  /** A client of `pool`, through the latch: 503 at once while the database is unreachable. */
  private connect (pool: pg.Pool): Promise<pg.PoolClient> {
    return this.latch.acquire(() => pool.connect(), (client) => { client.release() })
  }

  /** pool.query through the latch (same release rule: a client whose statement failed is dropped). */
  private async poolQuery (text: string, params?: unknown[], name?: string): Promise<pg.QueryResult> {
    const client = await this.connect(this.pool)
    try {
      const res = name === undefined || !this.prepared ? await client.query(text, params) : await client.query({ name, text, values: params ?? [] })
      client.release()
      return res
    } catch (err) {
      client.release(err as Error)
      throw err
    }
  }

  async query<R> (sql: string, params?: unknown[], opts?: { name?: string }): Promise<QueryResult<R>> {
    try {
      const res = await this.poolQuery(sql, params as unknown[], opts?.name)
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 }
    } catch (err) {
      throw connectionProblem(err)
    }
  }

  async execScript (script: string, fn?: (tx: Queryable) => Promise<void>): Promise<void> {
    const client = await this.connect(this.pool).catch((err: unknown) => { throw connectionProblem(err) })
    try {
      await client.query('begin')
      await client.query(script)
      if (fn) await fn({ query: async <R>(sql: string, params?: unknown[]) => { const r = await client.query(sql, params as unknown[]); return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 } } })
      await client.query('commit')
    } catch (err) {
      await client.query('rollback').catch(() => {})
      throw connectionProblem(err)
    } finally {
      client.release()
    }
  }

  withUser<T> (claims: UserClaims, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('authenticated', JSON.stringify(claims), fn)
  }

  // The RLS preamble per claims object: a caller's scope (and so its claims) is reused across its
  // requests while its token is cached (src/plugins/auth.ts).
  private readonly userPreamble = new WeakMap<UserClaims, string>()

  async readAsUser<R> (claims: UserClaims, sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    let preamble = this.userPreamble.get(claims)
    if (preamble === undefined) {
      preamble = `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${pg.escapeLiteral(JSON.stringify(claims))}, true);\n`
      this.userPreamble.set(claims, preamble)
    }
    const text = preamble + inlineParams(sql, params, pg.escapeLiteral)
    try {
      const res = await this.poolQuery(text) as unknown as pg.QueryResult[]
      const last = res[res.length - 1]!
      return { rows: last.rows as R[], rowCount: last.rowCount ?? 0 }
    } catch (err) {
      throw connectionProblem(err)
    }
  }

  asService<T> (fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction('service_role', JSON.stringify({ role: 'service_role' }), fn)
  }

  private async transaction<T> (role: string, claimsJson: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.connect(this.pool)
    } catch (err) {
      throw connectionProblem(err)
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
      throw connectionProblem(err)
    } finally {
      client.release(broken)
    }
  }

  withAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean, timeoutMs?: number } = {}): Promise<{ acquired: true, value: T } | { acquired: false }> {
    // not in line behind other lock holders for a connect that cannot succeed
    if (this.latch.closed) return Promise.reject(this.latch.unavailable())
    return this.lockSlots.run(() => this.holdAdvisoryLock(namespace, key, fn, opts))
  }

  private async holdAdvisoryLock<T> (namespace: number, key: string, fn: () => Promise<T>, opts: { wait?: boolean, timeoutMs?: number }): Promise<{ acquired: true, value: T } | { acquired: false }> {
    let client: pg.PoolClient
    try {
      client = await this.connect(this.lockPool)
    } catch (err) {
      throw connectionProblem(err)
    }
    let acquired = false
    try {
      if (opts.wait === false) {
        const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [namespace, key])
        acquired = res.rows[0]?.ok === true
      } else {
        // Bounded: a holder that takes longer answers 409 rather than a hung request.
        await client.query(`set lock_timeout = ${Math.max(1, Math.round(opts.timeoutMs ?? 120_000))}`)
        try {
          await client.query('select pg_advisory_lock($1, hashtext($2))', [namespace, key])
          acquired = true
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') throw lockBusy()
          throw err
        }
      }
    } catch (err) {
      client.release(isConnectionError(err) ? err as Error : undefined)
      throw connectionProblem(err)
    }
    if (!acquired) {
      client.release()
      return { acquired: false }
    }
    const session = new LockSession(this.lockPool, client, namespace, key, this.log, this.lost)
    try {
      return { acquired: true, value: await fn() }
    } finally {
      await session.end()
    }
  }

  /**
   * One dedicated pooled client, with its own `error`/`end` handlers: a checked-out pg client that
   * loses its connection emits `error`, which with no handler would crash the process, and the
   * loss must be reported so the caller can listen again and catch up.
   */
  async notify (channel: string, payload: string): Promise<void> {
    await this.query('select pg_notify($1, $2)', [channel, payload])
  }

  async listen (channel: string, onPayload: (payload: string) => void, onLost: (err: Error) => void): Promise<Listener> {
    const client = await this.connect(this.pool)
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
    this.latch.stop()
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([Promise.all([this.pool.end(), this.lockPool.end()]), bound])
    clearTimeout(timer)
  }
}

type ConnectCallback = (err: Error | null, client?: pg.Client) => void

/** pg-pool builds its clients from this class: a pool connect goes through the latch. */
function latchedClient (latch: ConnectLatch): typeof pg.Client {
  return class LatchedClient extends pg.Client {
    override connect (): Promise<pg.Client>
    override connect (callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void
    override connect (callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | undefined {
      const attempt = latch.attempt(() => super.connect())
      if (!callback) return attempt
      const cb = callback as ConnectCallback
      attempt.then((client) => { cb(null, client) }, (err: Error) => { cb(err) })
      return undefined
    }
  }
}
