// Graceful shutdown within a bound. `app.close()` (SIGTERM/SIGINT in server.ts) goes:
//   1. preClose hooks (this one; event streams should end themselves in theirs): new requests on
//      open connections get 503 (return503OnClosing); the drain clock starts.
//   2. Fastify stops listening (new connections are refused) and waits for the open connections:
//      every in-flight request finishes with its normal answer; a keep-alive connection is closed
//      as soon as its request is answered (otherwise it would hold the close for the keep-alive
//      timeout); whatever is still open when the bound (SHUTDOWN_TIMEOUT_MS) expires, e.g. a
//      stream nobody ended, is destroyed.
//   3. onClose hooks, last registered first: the live tail and the event hub stop, then the
//      database plugin closes the pool.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

export interface LifecyclePluginOptions {
  /** Default: config SHUTDOWN_TIMEOUT_MS. */
  timeoutMs?: number
  /** How often idle connections are swept while draining. Default 50 ms. */
  sweepMs?: number
}

async function lifecyclePlugin (app: FastifyInstance, opts: LifecyclePluginOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? app.config.SHUTDOWN_TIMEOUT_MS
  const sweepMs = opts.sweepMs ?? 50
  const log = app.log.child({ component: 'shutdown' })

  app.addHook('preClose', async () => {
    const started = performance.now()
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
}

export default fp(lifecyclePlugin, { name: 'lifecycle', dependencies: ['config'] })
