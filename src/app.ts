import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
import fp from 'fastify-plugin'
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import type { Redis } from 'ioredis'
import type { Config } from './config.ts'
import type { Database } from './db/database.ts'
import type { Store } from './store/store.ts'
import type { N8nClient } from './services/n8n-client.ts'
import type { TokenVerifier } from './services/token-verifier.ts'
import configPlugin from './plugins/config.ts'
import dbPlugin from './plugins/db.ts'
import errorsPlugin from './plugins/errors.ts'
import inputGuardPlugin from './plugins/input-guard.ts'
import authPlugin from './plugins/auth.ts'
import n8nPlugin from './plugins/n8n.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import swaggerPlugin from './plugins/swagger.ts'
import servicesPlugin from './plugins/services.ts'
import lifecyclePlugin from './plugins/lifecycle.ts'
import metricsPlugin from './plugins/metrics.ts'
import liveTailPlugin from './plugins/live-tail.ts'
import type { LiveTailPluginOptions } from './plugins/live-tail.ts'
import type { ServicesPluginOptions } from './plugins/services.ts'
import healthRoutes from './routes/health/index.ts'
import meRoutes from './routes/me/index.ts'
import workflowRoutes from './routes/workflows/index.ts'
import metricsRoutes from './routes/metrics/index.ts'
import syncRoutes from './routes/sync/index.ts'
import workflowSyncCompatRoutes from './routes/workflow-sync/index.ts'
import cleanupRoutes from './routes/cleanup/index.ts'
import statsRoutes from './routes/stats/index.ts'
import eventsPlugin from './plugins/events.ts'
import eventRoutes from './routes/events/index.ts'
import dashboardPlugin from './plugins/dashboard.ts'

export interface AppOptions {
  config: Config
  /** Injected dependencies (tests, benchmarks); otherwise built from config. */
  db?: Database
  /** A store made by the caller (e.g. a SupabaseStore in tests); wins over `db`. */
  store?: Store
  n8n?: N8nClient
  tokenVerifier?: TokenVerifier
  redis?: Redis
  migrate?: boolean
  swaggerUi?: boolean
  hooks?: ServicesPluginOptions['workflowHooks']
  syncHooks?: ServicesPluginOptions['syncHooks']
  /** The live tail's timing (tests, benchmarks). */
  liveTail?: LiveTailPluginOptions['tuning']
}

/** The application as a plugin: shared things first, in dependency order, then the routes. */
export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.setValidatorCompiler(validatorCompiler)
  // Responses are checked against their zod schemas in development and tests, where a drift
  // between the code and the documented shape must fail loudly. In production the answers are
  // built from explicit column lists and mappers, so the check would only cost time: a 50-row
  // list takes ~170 µs through zod against ~45 µs through JSON.stringify (bench/api.ts).
  fastify.setSerializerCompiler(opts.config.NODE_ENV === 'production' ? () => (data) => JSON.stringify(data) : serializerCompiler)

  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(errorsPlugin)
  await fastify.register(inputGuardPlugin)
  if (opts.config.corsOrigins.length > 0) {
    await fastify.register(cors, {
      origin: opts.config.corsOrigins,
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'if-match', 'if-none-match', 'last-event-id', 'x-request-id'],
      exposedHeaders: ['etag', 'location', 'retry-after', 'x-request-id', 'idempotent-replayed'],
      methods: ['GET', 'POST', 'PATCH', 'DELETE']
    })
  }
  await fastify.register(swaggerPlugin, { ui: opts.swaggerUi !== false })
  await fastify.register(dbPlugin, { ...(opts.store ? { store: opts.store } : opts.db ? { db: opts.db } : {}), migrate: opts.migrate !== false })
  await fastify.register(n8nPlugin, opts.n8n ? { n8n: opts.n8n } : {})
  await fastify.register(authPlugin, opts.tokenVerifier ? { tokenVerifier: opts.tokenVerifier } : {})
  await fastify.register(rateLimitPlugin, opts.redis ? { redis: opts.redis } : {})
  // After db (its onClose, awaiting background work, runs before the pool closes), before services (which record metrics).
  await fastify.register(lifecyclePlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(servicesPlugin, { ...(opts.hooks ? { workflowHooks: opts.hooks } : {}), ...(opts.syncHooks ? { syncHooks: opts.syncHooks } : {}) })
  await fastify.register(liveTailPlugin, opts.liveTail ? { tuning: opts.liveTail } : {})

  await fastify.register(healthRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(meRoutes)
  await fastify.register(workflowRoutes)
  await fastify.register(statsRoutes)
  await fastify.register(syncRoutes)
  await fastify.register(workflowSyncCompatRoutes)
  await fastify.register(cleanupRoutes)
  await fastify.register(eventsPlugin)
  await fastify.register(eventRoutes)
  await fastify.register(dashboardPlugin)
}

/** Logger settings: request ids on every line; credentials never written. */
export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-n8n-api-key"]', 'req.headers["idempotency-key"]',
        'headers.authorization', 'headers["x-n8n-api-key"]', 'authorization', 'apiKey', 'api_key', '*.apiKey', '*.api_key',
        'N8N_API_KEY', '*.N8N_API_KEY', 'CRON_SECRET', '*.CRON_SECRET', 'SUPABASE_JWT_SECRET', '*.SUPABASE_JWT_SECRET',
        'SUPABASE_SERVICE_ROLE_KEY', '*.SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_ANON_KEY', '*.SUPABASE_ANON_KEY',
        'DATABASE_URL', '*.DATABASE_URL', 'token', '*.token', 'password', '*.password',
        'accessToken', '*.accessToken', 'apikey', '*.apikey', 'req.headers.apikey', 'serviceRoleKey', '*.serviceRoleKey', 'anonKey', '*.anonKey'
      ],
      censor: '[redacted]'
    }
  }
}

export function serverOptions (config: Config, logger: FastifyServerOptions['logger'] | boolean = loggerOptions(config)): FastifyServerOptions {
  return {
    logger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    trustProxy: true,
    return503OnClosing: true,
    // Opening the embedded database and applying migrations can take longer than Fastify's 10 s
    // plugin default on a busy small machine; a boot that is merely slow must not fail.
    pluginTimeout: 120_000,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true }
  }
}

/** Builds a ready instance: used by the server, the tests and the benchmarks. */
export async function buildApp (opts: AppOptions & { logger?: FastifyServerOptions['logger'] | boolean }): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(opts.config, opts.logger ?? loggerOptions(opts.config)))
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  // fastify-plugin: the app's decorators (db, swagger, services) live on the returned instance
  await fastify.register(fp(app, { name: 'workflow-sync' }), opts)
  await fastify.ready()
  return fastify
}
