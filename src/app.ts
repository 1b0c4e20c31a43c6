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
import errorsPlugin, { clientErrorHandler } from './plugins/errors.ts'
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
import { censorSecrets } from './lib/log-censor.ts'
import { RequestLog } from './plugins/request-log.ts'

export interface AppOptions {
  config: Config
  /** Tests and benchmarks only: what they inject instead of what config builds. */
  testing?: AppTestSeams
}

/**
 * The seams a test or a benchmark injects through (test/helpers/app.ts). Production passes none:
 * everything is built from config.
 */
export interface AppTestSeams {
  db?: Database
  /** A store made by the caller (e.g. a SupabaseStore in tests); wins over `db`. */
  store?: Store
  n8n?: N8nClient
  tokenVerifier?: TokenVerifier
  redis?: Redis
  /** Default true; false on a database migrated beforehand (benchmarks, a second app on one database). */
  migrate?: boolean
  /** Default true. */
  swaggerUi?: boolean
  /** The deploy saga's crash point (test/routes/idempotency.test.ts, test-e2e/service.test.ts). */
  workflowHooks?: ServicesPluginOptions['workflowHooks']
  syncHooks?: ServicesPluginOptions['syncHooks']
  /** The live tail's timing. */
  liveTailTuning?: LiveTailPluginOptions['tuning']
}

/** The application as a plugin: shared things first, in dependency order, then the routes. */
export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.setValidatorCompiler(validatorCompiler)
  // Responses are checked against their zod schemas in development and tests, where a drift
  // between the code and the documented shape must fail loudly. In production the answers are
  // built from explicit column lists and mappers, so the check would only cost time: a 50-row
  // list takes ~170 µs through zod against ~45 µs through JSON.stringify (bench/api.ts).
  fastify.setSerializerCompiler(opts.config.NODE_ENV === 'production' ? () => (data) => JSON.stringify(data) : serializerCompiler)

  const seams = opts.testing ?? {}
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
  await fastify.register(swaggerPlugin, { ui: seams.swaggerUi !== false })
  await fastify.register(dbPlugin, { ...(seams.store ? { store: seams.store } : seams.db ? { db: seams.db } : {}), migrate: seams.migrate !== false })
  await fastify.register(n8nPlugin, seams.n8n ? { n8n: seams.n8n } : {})
  await fastify.register(authPlugin, seams.tokenVerifier ? { tokenVerifier: seams.tokenVerifier } : {})
  await fastify.register(rateLimitPlugin, seams.redis ? { redis: seams.redis } : {})
  // Its preClose hook starts the drain before any later plugin's (the event hub ends its streams in its own).
  await fastify.register(lifecyclePlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(servicesPlugin, { ...(seams.workflowHooks ? { workflowHooks: seams.workflowHooks } : {}), ...(seams.syncHooks ? { syncHooks: seams.syncHooks } : {}) })
  await fastify.register(liveTailPlugin, seams.liveTailTuning ? { tuning: seams.liveTailTuning } : {})

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

/**
 * Logger settings: request ids on every line; credentials never written (src/lib/log-censor.ts,
 * on every line's fields; child loggers here bind only component names and request ids).
 */
export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  // Silent writes nothing: no logger at all, so a request pays for no child logger and no
  // response listeners either (about 5 µs of CPU per request, bench:api).
  if (config.LOG_LEVEL === 'silent') return false
  return {
    level: config.LOG_LEVEL,
    formatters: { log: (fields: Record<string, unknown>) => censorSecrets(fields) }
  }
}

export function serverOptions (config: Config, logger: FastifyServerOptions['logger'] | boolean = loggerOptions(config)): FastifyServerOptions {
  return {
    logger,
    logController: new RequestLog(),
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // A hop count as a function: Fastify's types take booleans, addresses and functions.
    trustProxy: typeof config.trustProxy === 'number' ? ((hops: number) => (_address: string, i: number) => i < hops)(config.trustProxy) : config.trustProxy,
    return503OnClosing: true,
    clientErrorHandler,
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
