import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { finishOpenapi } from './openapi-finish.ts'

export const openapiInfo = {
  title: 'workflow-sync',
  version: '1.0.0',
  description: [
    'Keeps workflows in sync between Supabase (Postgres, the source of truth) and n8n (the execution engine).',
    '',
    'User routes take a Supabase access token (`Authorization: Bearer <token>`); cron routes take `CRON_SECRET` or a `service_role` JWT.',
    'Every error is `application/problem+json` with `type`, `title`, `status`, `detail`, `code` and `requestId`.',
    'Rate limits are per user (per address when anonymous): ordinary routes `RATE_LIMIT_MAX`/min, writes a fifth of it, `/sync` a sixtieth; a 429 carries `Retry-After`.'
  ].join('\n')
}

async function swaggerPlugin (app: FastifyInstance, opts: { ui?: boolean }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: openapiInfo,
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A Supabase access token (users), or CRON_SECRET / a service_role JWT (cron routes)' }
        }
      },
      tags: [
        { name: 'workflows', description: 'A user\'s workflows, deployed to n8n' },
        { name: 'sync', description: 'Execution results from n8n into Postgres' },
        { name: 'cron', description: 'Housekeeping for schedulers (service credential)' },
        { name: 'events', description: 'Live changes (Server-Sent Events)' },
        { name: 'stats', description: 'Execution analytics from the ledger, per hour or day' },
        { name: 'account', description: 'The caller' },
        { name: 'operations', description: 'Health, readiness and metrics' }
      ]
    },
    transform: jsonSchemaTransform,
    transformObject: (d) => finishOpenapi(jsonSchemaTransformObject(d))
  })
  if (opts.ui !== false) {
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, deepLinking: true }
    })
  }
}

export default fp(swaggerPlugin, { name: 'swagger' })
