import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { WorkflowService } from '../services/workflow-service.ts'
import type { WorkflowServiceOptions } from '../services/workflow-service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    workflowService: WorkflowService
  }
}

export interface ServicesPluginOptions {
  workflowHooks?: Pick<WorkflowServiceOptions, 'afterN8nCreate'>
}

async function servicesPlugin (app: FastifyInstance, opts: ServicesPluginOptions): Promise<void> {
  const logger = app.log.child({ component: 'workflows' })
  app.decorate('workflowService', new WorkflowService({
    db: app.db,
    n8n: app.n8n,
    logger,
    idempotencyTtlHours: app.config.IDEMPOTENCY_TTL_HOURS,
    ...opts.workflowHooks
  }))
}

export default fp(servicesPlugin, { name: 'services', dependencies: ['db', 'n8n'] })
