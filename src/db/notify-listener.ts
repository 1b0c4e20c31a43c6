import pg from 'pg'
import type { Database } from './database.ts'
import { PgDatabase } from './pg-database.ts'

export interface Listener {
  /** UNLISTEN and give the connection back. */
  close(): Promise<void>
  /** Drop the connection without a round trip (it is believed dead). */
  abort(): void
}

/**
 * LISTEN on a channel and say when the connection is lost. On server Postgres this holds one
 * dedicated client of the pool, with its own `error`/`end` handlers: a checked-out pg client that
 * loses its connection emits `error`, which with no handler would crash the process, and the
 * loss must be noticed so the caller can listen again and catch up. On PGlite (in-process, it
 * cannot lose a connection) it is Database.listen.
 *
 * `onLost` is called at most once; the client is then already released (destroyed).
 */
export async function listenWithLoss (
  db: Database,
  channel: string,
  onPayload: (payload: string) => void,
  onLost: (err: Error) => void
): Promise<Listener> {
  if (!(db instanceof PgDatabase)) {
    const unlisten = await db.listen(channel, onPayload)
    return { close: unlisten, abort () { void unlisten().catch(() => {}) } }
  }

  const client = await db.pool.connect()
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
