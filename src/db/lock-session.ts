// One held session-level advisory lock of PgDatabase.withAdvisoryLock, and how it is kept
// through a lost connection.
import pg from 'pg'
import { backoffDelay, sleep } from '../lib/backoff.ts'

/**
 * A held session-level advisory lock. If its connection dies while the work runs (a database
 * restart), Postgres has released the lock with the session: the work goes on (its own queries
 * fail or succeed on their own), and the lock is taken again on a new session as soon as the
 * database answers, with capped, jittered backoff, so that exclusion is restored for the rest of
 * the work. The work's own steps are idempotent (markers, ledger keys), which is what makes the
 * short unguarded window safe.
 */
export class LockSession {
  private client: pg.PoolClient | null
  private done = false
  private retrying: Promise<void> | null = null
  private readonly ended = new AbortController()
  private readonly onError = (err: Error): void => { this.lose(err) }

  private readonly pool: pg.Pool
  private readonly namespace: number
  private readonly key: string
  private readonly log: { warn(obj: object, msg?: string): void, info(obj: object, msg?: string): void }
  private readonly counters: { lockSessions: number, lockReacquired: number }

  constructor (pool: pg.Pool, client: pg.PoolClient, namespace: number, key: string, log: LockSession['log'], counters: LockSession['counters']) {
    this.pool = pool
    this.namespace = namespace
    this.key = key
    this.log = log
    this.counters = counters
    this.client = client
    client.on('error', this.onError)
  }

  private lose (err: Error): void {
    const client = this.client
    if (!client) return
    this.client = null
    client.off('error', this.onError)
    client.release(err)
    this.counters.lockSessions++
    if (this.done) return
    this.log.warn({ lock: this.key, err: { message: err.message } }, 'advisory lock session lost; taking the lock again when the database answers')
    this.retrying = this.reacquire()
  }

  private async reacquire (): Promise<void> {
    for (let attempt = 0; !this.done; attempt++) {
      await sleep(backoffDelay(attempt, 200, 5000), this.ended.signal)
      if (this.done) return
      let client: pg.PoolClient
      try {
        client = await this.pool.connect()
      } catch {
        continue
      }
      try {
        const res = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [this.namespace, this.key])
        if (res.rows[0]?.ok !== true) {
          client.release()
          continue
        }
      } catch (err) {
        client.release(err as Error)
        continue
      }
      if (this.done) {
        // the work finished meanwhile: give the lock straight back
        await client.query('select pg_advisory_unlock($1, hashtext($2))', [this.namespace, this.key]).then(() => client.release(), (err: Error) => client.release(err))
        return
      }
      this.client = client
      client.on('error', this.onError)
      this.counters.lockReacquired++
      this.log.info({ lock: this.key }, 'advisory lock taken again')
      return
    }
  }

  /** The work is over: unlock (a lost session has released it already). */
  async end (): Promise<void> {
    this.done = true
    this.ended.abort()
    await this.retrying
    const client = this.client
    if (!client) return
    this.client = null
    client.off('error', this.onError)
    try {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [this.namespace, this.key])
      client.release()
    } catch (err) {
      // a lost connection releases the lock with the session
      client.release(err as Error)
    }
  }
}
