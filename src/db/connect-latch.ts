// Fail fast while the database is down (issue 9). Without this, every acquisition of a pg pool
// goes on trying to connect: pg-pool starts one connect per free slot and queues the rest, and a
// queued caller waits for an attempt to fail before its own attempt starts, so under load a request
// waited seconds behind a line of refused connects before it could answer 503.
//
// The latch closes on the first pool connect attempt that fails with a connection error, or when a
// probe sent after a lost session fails. While it is closed: no pool client opens a socket (new
// acquisitions and the callers already queued in pg-pool answer database_unavailable at once), and
// callers still waiting for a slot are released with the same error. One probe at a time, with
// capped backoff, connects outside the pools; its first success re-opens the latch, so the service
// serves again within about `capMs` of the database accepting connections.
import { backoffDelay, sleep } from '../lib/backoff.ts'
import { databaseUnavailable, isConnectionError } from './errors.ts'

export interface ConnectLatchOptions {
  /** One connection attempt outside the pools: resolves once the server accepts a session. */
  probe: () => Promise<void>
  /** Backoff of the probes while closed (defaults 100 ms doubling up to 1000 ms, jittered). */
  baseMs?: number
  capMs?: number
  log: { warn(obj: object, msg?: string): void, info(obj: object, msg?: string): void }
}

export class ConnectLatch {
  /** The connection error that closed the latch; null while open. */
  private cause: unknown = null
  private probing: Promise<void> | null = null
  private readonly stopped = new AbortController()
  // callers waiting for a pool client: released with a 503 when the latch closes
  private readonly waiters = new Set<(err: Error) => void>()
  private readonly opts: Required<Omit<ConnectLatchOptions, 'log'>> & Pick<ConnectLatchOptions, 'log'>

  /** attempts: pool connects that opened a socket; refused: pool connects answered by the latch. */
  readonly stats = { attempts: 0, refused: 0, released: 0, closed: 0, probes: 0, reopened: 0 }

  constructor (opts: ConnectLatchOptions) {
    this.opts = { baseMs: 100, capMs: 1000, ...opts }
  }

  get closed (): boolean {
    return this.cause !== null
  }

  /** The answer while closed. */
  unavailable (): Error {
    return databaseUnavailable(this.cause)
  }

  /** A pool client's connect: refused at once while closed; a failure may close the latch. */
  async attempt<T> (connect: () => Promise<T>): Promise<T> {
    if (this.closed) {
      this.stats.refused++
      throw this.unavailable()
    }
    this.stats.attempts++
    try {
      return await connect()
    } catch (err) {
      if (isConnectionError(err)) this.close(err)
      throw err
    }
  }

  /**
   * An acquisition (`start`: the pool's connect): refused at once while closed, released with a
   * 503 if the latch closes while it waits. A client that arrives after its caller was released
   * goes straight back (`giveBack`).
   */
  acquire<T> (start: () => Promise<T>, giveBack: (value: T) => void): Promise<T> {
    if (this.closed) {
      this.stats.refused++
      return Promise.reject(this.unavailable())
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const release = (err: Error): void => {
        if (settled) return
        settled = true
        this.stats.released++
        reject(err)
      }
      this.waiters.add(release)
      start().then((value) => {
        this.waiters.delete(release)
        if (settled) giveBack(value)
        else { settled = true; resolve(value) }
      }, (err: unknown) => {
        this.waiters.delete(release)
        if (!settled) { settled = true; reject(err) }
      })
    })
  }

  /**
   * A session of the pools was lost (a restart terminates them all at once): that alone does not
   * prove the server gone (one backend may have been terminated), so one probe asks. Callers
   * waiting behind clients that are still checked out are released if it fails.
   */
  suspect (): void {
    if (this.closed || this.probing || this.stopped.signal.aborted) return
    this.stats.probes++
    this.probing = this.opts.probe().then(
      () => {},
      (err: unknown) => { if (isConnectionError(err)) this.close(err) }
    ).finally(() => {
      this.probing = null
      if (this.closed) this.startProbing()
    })
  }

  /** Stops probing for good (the database is being closed). */
  stop (): void {
    this.stopped.abort()
  }

  private close (err: unknown): void {
    if (this.closed) return
    this.cause = err
    this.stats.closed++
    const e = err as { code?: string, message?: string }
    this.opts.log.warn({ err: { message: e.message, code: e.code } }, 'database unreachable: answering 503 at once until a probe connects')
    for (const release of [...this.waiters]) release(this.unavailable())
    this.waiters.clear()
    this.startProbing()
  }

  private startProbing (): void {
    if (this.probing || this.stopped.signal.aborted) return
    this.probing = this.probeUntilOpen().finally(() => { this.probing = null })
  }

  private async probeUntilOpen (): Promise<void> {
    for (let attempt = 0; this.closed && !this.stopped.signal.aborted; attempt++) {
      await sleep(backoffDelay(attempt, this.opts.baseMs, this.opts.capMs), this.stopped.signal)
      if (this.stopped.signal.aborted) return
      this.stats.probes++
      try {
        await this.opts.probe()
      } catch (err) {
        // any other failure is not "unreachable": the pools' own connects will report it
        if (isConnectionError(err)) continue
      }
      this.cause = null
      this.stats.reopened++
      this.opts.log.info({ probes: attempt + 1 }, 'database reachable again')
      return
    }
  }
}
