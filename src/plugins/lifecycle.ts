// Graceful shutdown within a bound. `app.close()` (SIGTERM/SIGINT in server.ts) goes:
//   1. preClose hooks (this one; event streams should end themselves in theirs): new requests on
//      open connections get 503 (return503OnClosing); `app.shutdownSignal` aborts so that
//      background loops start nothing new; the drain clock starts.
//   2. Fastify stops listening (new connections are refused) and waits for the open connections:
//      every in-flight request finishes with its normal answer; a keep-alive connection is closed
//      as soon as its request is answered (otherwise it would hold the close for the keep-alive
//      timeout); whatever is still open when the bound (SHUTDOWN_TIMEOUT_MS) expires, e.g. a
//      stream nobody ended, is destroyed.
//   3. onClose hooks, last registered first: this plugin waits for work given to
//      `app.trackWork()` until the same deadline, then the database plugin closes the pool.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Background work (a sync started outside a request, a cleanup...) that shutdown must let
     * finish, within SHUTDOWN_TIMEOUT_MS: `app.trackWork(engine.syncAll())`. Returns the same
     * promise; its rejection is the caller's to handle.
     */
    trackWork: <T>(work: Promise<T>) => Promise<T>
    /** Aborted when shutdown begins: loops stop taking new work, long waits give up. */
    shutdownSignal: AbortSignal
  }
}

export interface LifecyclePluginOptions {
  /** Default: config SHUTDOWN_TIMEOUT_MS. */
  timeoutMs?: number
  /** How often idle connections are swept while draining. Default 50 ms. */
  sweepMs?: number
}

async function lifecyclePlugin (app: FastifyInstance, opts: LifecyclePluginOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? app.config.SHUTDOWN_TIMEOUT_MS
  const sweepMs = opts.sweepMs ?? 50
  const pending = new Set<Promise<unknown>>()
  const controller = new AbortController()
  let deadline = Number.POSITIVE_INFINITY
  const log = app.log.child({ component: 'shutdown' })

  app.decorate('shutdownSignal', controller.signal)
  app.decorate('trackWork', <T>(work: Promise<T>): Promise<T> => {
    const settled: Promise<unknown> = work.then(() => {}, () => {})
    pending.add(settled)
    void settled.then(() => { pending.delete(settled) })
    return work
  })

  app.addHook('preClose', async () => {
    const started = performance.now()
    deadline = started + timeoutMs
    controller.abort(new Error('the service is shutting down'))
    const server = app.server
    if (!server.listening) return
    log.info({ timeout_ms: timeoutMs }, 'draining: finishing in-flight requests')
    // Node's server.close() closes the connections idle at that moment only; a keep-alive
    // connection whose request finishes later would stay open until its keep-alive timeout.
    const sweep = setInterval(() => server.closeIdleConnections(), sweepMs)
    const force = setTimeout(() => {
      log.warn({ timeout_ms: timeoutMs }, 'drain bound reached: closing the connections still open')
      server.closeAllConnections()
    }, timeoutMs)
    sweep.unref()
    force.unref()
    server.once('close', () => {
      clearInterval(sweep)
      clearTimeout(force)
      log.info({ drain_ms: Math.round(performance.now() - started) }, 'all connections closed')
    })
  })

  app.addHook('onClose', async () => {
    if (pending.size === 0) return
    const remaining = Math.max(0, deadline - performance.now())
    log.info({ pending: pending.size }, 'waiting for background work')
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      Promise.all(pending).then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(resolve, Number.isFinite(remaining) ? remaining : timeoutMs, true) })
    ])
    clearTimeout(timer)
    if (timedOut) log.warn({ abandoned: pending.size, timeout_ms: timeoutMs }, 'shutdown bound reached: background work abandoned')
  })
}

export default fp(lifecyclePlugin, { name: 'lifecycle', dependencies: ['config'] })
