import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { WorkflowService } from '../services/workflow-service.ts'
import type { WorkflowServiceOptions } from '../services/workflow-service.ts'
import { SyncEngine } from '../services/sync-engine.ts'
import type { SyncHooks } from '../services/sync-engine.ts'
import { CleanupService } from '../services/cleanup.ts'
import { eventLogRetention } from '../services/events.ts'

declare module 'fastify' {
  interface FastifyInstance {
    workflowService: WorkflowService
    syncEngine: SyncEngine
    cleanup: CleanupService
  }
}

export interface ServicesPluginOptions {
  workflowHooks?: Pick<WorkflowServiceOptions, 'afterN8nCreate'>
  syncHooks?: SyncHooks
}

async function servicesPlugin (app: FastifyInstance, opts: ServicesPluginOptions): Promise<void> {
  const workflowService = new WorkflowService({
    db: app.db,
    n8n: app.n8n,
    logger: app.log.child({ component: 'workflows' }),
    idempotencyTtlHours: app.config.IDEMPOTENCY_TTL_HOURS,
    ...opts.workflowHooks
  })
  app.decorate('workflowService', workflowService)
  app.decorate('syncEngine', new SyncEngine({
    db: app.db,
    n8n: app.n8n,
    logger: app.log.child({ component: 'sync' }),
    concurrency: app.config.N8N_CONCURRENCY,
    redeploy: async (scope, workflowId) => { await workflowService.deploy(scope, workflowId) },
    ...(opts.syncHooks ? { hooks: opts.syncHooks } : {})
  }))
  app.decorate('cleanup', new CleanupService({
    db: app.db,
    n8n: app.n8n,
    logger: app.log.child({ component: 'cleanup' }),
    graceMinutes: app.config.CLEANUP_GRACE_MINUTES,
    syncLogRetentionDays: app.config.SYNC_LOG_RETENTION_DAYS,
    executionRetentionDays: app.config.EXECUTION_RETENTION_DAYS,
    // The event log only serves Last-Event-ID catch-up: a day of it is plenty.
    extraPurges: [eventLogRetention(app.db, 24)]
  }))
}

export default fp(servicesPlugin, { name: 'services', dependencies: ['db', 'n8n'] })
