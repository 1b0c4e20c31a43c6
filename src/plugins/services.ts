import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { METRIC_PREFIX } from './metrics.ts'
import type { FastifyInstance } from 'fastify'
import { WorkflowService } from '../services/workflow-service.ts'
import { WorkflowListCache } from '../services/workflow-list-cache.ts'
import type { WorkflowServiceOptions } from '../services/workflow-service.ts'
import { SyncEngine } from '../sync/engine.ts'
import type { SyncHooks } from '../sync/types.ts'
import { SyncHistory } from '../services/sync-history.ts'
import { CleanupService } from '../services/cleanup.ts'
import { WorkflowRunner } from '../services/workflow-runner.ts'
import { ExecutionStatsService } from '../services/execution-stats.ts'
import { serviceScope } from '../store/scope.ts'
import { AppError } from '../errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    workflowService: WorkflowService
    syncEngine: SyncEngine
    /** Sync read model: execution history, sync logs, sync stats. */
    syncHistory: SyncHistory
    cleanup: CleanupService
    workflowRunner: WorkflowRunner
    executionStats: ExecutionStatsService
  }
}

export interface ServicesPluginOptions {
  workflowHooks?: Pick<WorkflowServiceOptions, 'afterN8nCreate'>
  syncHooks?: SyncHooks
}

/** The list cache's figures, read on every scrape (nothing is exported while it is off). */
function listCacheMetrics (registry: Registry, service: WorkflowService): void {
  const name = `${METRIC_PREFIX}workflow_list_cache`
  let seen = { hits: 0, misses: 0 }
  registry.registerMetric(new Counter({
    name: `${name}_lookups_total`,
    registers: [], // registerMetric adds it to this app's registry (never prom-client's global one)
    help: 'GET /workflows answers looked up in the list cache, by result (hit: served from memory after the stamp check; miss: read from the database)',
    labelNames: ['result'] as const,
    collect () {
      const s = service.listCacheStats()
      if (!s) return
      if (s.hits > seen.hits) this.inc({ result: 'hit' }, s.hits - seen.hits)
      if (s.misses > seen.misses) this.inc({ result: 'miss' }, s.misses - seen.misses)
      seen = { hits: s.hits, misses: s.misses }
    }
  }))
  registry.registerMetric(new Gauge({
    name: `${name}_bytes`,
    registers: [],
    help: 'Bytes of GET /workflows answers held by the list cache (bounded by WORKFLOW_LIST_CACHE_MB)',
    collect () {
      const s = service.listCacheStats()
      if (s) this.set(s.bytes)
    }
  }))
}

async function servicesPlugin (app: FastifyInstance, opts: ServicesPluginOptions): Promise<void> {
  const listCache = new WorkflowListCache({ maxBytes: app.config.WORKFLOW_LIST_CACHE_MB * 1024 * 1024 })
  const workflowService = new WorkflowService({
    store: app.store,
    n8n: app.n8n,
    logger: app.log.child({ component: 'workflows' }),
    idempotencyTtlHours: app.config.IDEMPOTENCY_TTL_HOURS,
    listCache,
    ...opts.workflowHooks
  })
  app.decorate('workflowService', workflowService)
  if (app.hasDecorator('metrics')) listCacheMetrics(app.metrics.registry, workflowService)
  app.decorate('syncEngine', new SyncEngine({
    store: app.store,
    n8n: app.n8n,
    logger: app.log.child({ component: 'sync' }),
    concurrency: app.config.N8N_CONCURRENCY,
    // A deploy that n8n did not complete keeps the row pending (or error) and returns it: for the
    // sync it is a failure, reported with the row's last_error.
    redeploy: async (scope, workflowId) => {
      const row = await workflowService.deploy(scope, workflowId)
      if (row.status === 'deployed') return
      const why = row.last_error ?? 'n8n did not take the workflow'
      throw new AppError(row.status === 'error' ? 'n8n_rejected' : why.startsWith('n8n is unavailable') ? 'n8n_unavailable' : 'n8n_error', why)
    },
    metrics: app.metrics,
    ...(opts.syncHooks ? { hooks: opts.syncHooks } : {})
  }))
  app.decorate('syncHistory', new SyncHistory({ store: app.store }))
  app.decorate('executionStats', new ExecutionStatsService({ store: app.store }))
  app.decorate('workflowRunner', new WorkflowRunner({
    store: app.store,
    n8n: app.n8n,
    webhookBaseUrl: app.config.n8nWebhookUrl,
    timeoutMs: app.config.N8N_TIMEOUT_MS
  }))
  app.decorate('cleanup', new CleanupService({
    store: app.store,
    n8n: app.n8n,
    logger: app.log.child({ component: 'cleanup' }),
    graceMinutes: app.config.CLEANUP_GRACE_MINUTES,
    syncLogRetentionDays: app.config.SYNC_LOG_RETENTION_DAYS,
    executionRetentionDays: app.config.EXECUTION_RETENTION_DAYS,
    // The event log only serves Last-Event-ID catch-up: a day of it is plenty.
    extraPurges: [{ name: 'workflow_events', run: (dryRun) => app.store.purgeEventLog(serviceScope, 24, dryRun) }]
  }))
}

export default fp(servicesPlugin, { name: 'services', dependencies: ['db', 'n8n', 'metrics'] })
