import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { AppError } from '../errors.ts'
import { redisWithFallback } from './rate-limit-store.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-caller limits per minute: ordinary routes, writes, and /sync (which costs n8n calls). */
    rateLimits: { read: number, write: number, sync: number }
    rateLimitedCount: () => number
  }
}

/** Route config for a stricter preset: `config: app.rateLimitConfig('write')`. */
export function rateLimitKey (request: FastifyRequest): string {
  if (request.user) return `user:${request.user.userId}`
  if (request.scope?.kind === 'service') return 'service'
  return `ip:${request.ip}`
}

async function rateLimitPlugin (app: FastifyInstance, opts: { redis?: Redis }): Promise<void> {
  const max = app.config.RATE_LIMIT_MAX
  const limits = { read: max, write: Math.max(1, Math.floor(max / 5)), sync: Math.max(1, Math.floor(max / 60)) }
  app.decorate('rateLimits', limits)
  let limited = 0
  app.decorate('rateLimitedCount', () => limited)

  let redis = opts.redis
  if (!redis && app.config.REDIS_URL) {
    // No offline queue and a command timeout: while Redis is away a request never waits for it.
    redis = new Redis(app.config.REDIS_URL, {
      connectTimeout: 2000,
      commandTimeout: app.config.REDIS_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: false,
      // reconnects forever, capped at 5 s, so it comes back by itself
      retryStrategy: (times: number) => Math.min(5000, 100 * 2 ** Math.min(times, 6))
    })
    redis.on('error', (err: Error) => app.log.warn({ err: { message: err.message } }, 'redis error (rate limits)'))
    const owned = redis
    app.addHook('onClose', async () => { owned.disconnect() })
  }

  await app.register(rateLimit, {
    global: true,
    max: limits.read,
    timeWindow: 60_000,
    // After authentication (route onRequest hooks), so the key is the user, not the address; before
    // the body is parsed and validated, so a limited caller costs no parsing and invalid requests count.
    hook: 'preParsing',
    keyGenerator: rateLimitKey,
    // The limiter's store being down must not take the API down with it: with Redis, counts fall
    // back to this process's memory while it is away (src/plugins/rate-limit-store.ts).
    skipOnError: true,
    ...(redis
      ? {
          store: redisWithFallback(redis, 'workflow-sync:rl:', {
            onSwitch: (to, err) => {
              if (to === 'memory') app.log.warn({ err: err ? { message: err.message } : undefined }, 'rate limits: Redis unavailable; counting per process until it is back')
              else app.log.info('rate limits: counting in Redis again')
            }
          }) as unknown as NonNullable<Parameters<typeof rateLimit>[1]>['store']
        }
      : {}),
    errorResponseBuilder: (_request, context) => {
      limited++
      return new AppError('rate_limited', `Too many requests: ${context.max} per minute; retry in ${Math.ceil(context.ttl / 1000)} s`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) }
      })
    }
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['config'] })
