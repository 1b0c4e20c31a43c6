// The live tail on this replica (src/sync/live-tail.ts): started once the app is ready,
// stopped on close (SIGTERM goes through app.close()). LIVE_SYNC_INTERVAL_MS=0: no tail (null).
// Its metrics join the app's registry.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram } from 'prom-client'
import { LiveTail } from '../sync/live-tail.ts'
import { serviceScope } from '../store/scope.ts'
import { METRIC_PREFIX } from './metrics.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when LIVE_SYNC_INTERVAL_MS is 0. */
    liveTail: LiveTail | null
  }
}

export interface LiveTailPluginOptions {
  /** Test/bench overrides of the tail's timing (standby retry, fence check, backoff cap). */
  tuning?: { standbyMs?: number, fenceCheckMs?: number, maxBackoffMs?: number, recheckMaxMs?: number }
}

async function liveTailPlugin (app: FastifyInstance, opts: LiveTailPluginOptions): Promise<void> {
  const interval = app.config.LIVE_SYNC_INTERVAL_MS
  if (interval <= 0) {
    app.decorate('liveTail', null)
    return
  }
  const registers = [app.metrics.registry]
  const ticks = new Counter({ name: `${METRIC_PREFIX}live_tail_ticks_total`, help: 'Live tail ticks on this replica as leader, by outcome (ok, error)', labelNames: ['outcome'] as const, registers })
  const calls = new Counter({ name: `${METRIC_PREFIX}live_tail_n8n_calls_total`, help: 'n8n API calls made by the live tail', registers })
  const errors = new Counter({ name: `${METRIC_PREFIX}live_tail_errors_total`, help: 'Failed live tail ticks (n8n or the database failed; the tail backs off)', registers })
  const tickSeconds = new Histogram({ name: `${METRIC_PREFIX}live_tail_tick_duration_seconds`, help: 'Time of live tail ticks (n8n reads and the ledger write)', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers })
  const ingested = new Counter({ name: `${METRIC_PREFIX}live_tail_executions_ingested_total`, help: 'Ledger rows inserted or changed by the live tail', registers })
  const cleanupMs = app.config.CLEANUP_INTERVAL_MINUTES * 60_000
  const tail = new LiveTail({
    store: app.store,
    n8n: app.n8n,
    logger: app.log.child({ component: 'live-tail' }),
    intervalMs: interval,
    backfill: () => app.syncEngine.syncAll(),
    ...(cleanupMs > 0 ? { cleanup: { everyMs: cleanupMs, run: () => app.cleanup.run({ dryRun: false }) } } : {}),
    pending: {
      list: async () => (await app.store.listSyncTargets(serviceScope)).filter((t) => t.status === 'pending').map((t) => t.id),
      redeploy: async (id) => (await app.workflowService.deploy(serviceScope, id)).status
    },
    ...opts.tuning,
    onN8nCall: () => calls.inc(),
    onTick: (info) => {
      ticks.labels(info.ok ? 'ok' : 'error').inc()
      if (info.ok) tickSeconds.observe(info.durationMs / 1000)
      if (!info.ok) errors.inc()
      if (info.ingested > 0) {
        ingested.inc(info.ingested)
        app.metrics.executionsIngested.inc(info.ingested)
      }
    }
  })
  // Registered by hand: nothing else holds these gauges; prom-client calls collect() on a scrape.
  app.metrics.registry.registerMetric(new Gauge({
    name: `${METRIC_PREFIX}live_tail_leader`,
    registers: [], // none by construction (not prom-client's global one): registerMetric adds it to this app's
    help: '1 while this replica leads the live tail, else 0',
    collect () { this.set(tail.status().role === 'leader' ? 1 : 0) }
  }))
  app.metrics.registry.registerMetric(new Gauge({
    name: `${METRIC_PREFIX}live_tail_lag_seconds`,
    registers: [], // none by construction (not prom-client's global one): registerMetric adds it to this app's
    help: 'Leader: seconds since the start of the last successful tick, i.e. how far the ledger may lag n8n (0 on standbys)',
    collect () { this.set(tail.status().lag_seconds ?? 0) }
  }))
  app.decorate('liveTail', tail)
  app.addHook('onReady', async () => { tail.start() })
  app.addHook('onClose', async () => { await tail.stop() })
}

export default fp(liveTailPlugin, { name: 'live-tail', dependencies: ['config', 'db', 'n8n', 'metrics', 'services'] })
