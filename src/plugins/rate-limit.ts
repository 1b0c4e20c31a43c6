import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest, preParsingHookHandler } from 'fastify'
import { Redis } from 'ioredis'
import { AppError } from '../errors.ts'
import { memoryStore, redisWithFallback } from './rate-limit-store.ts'
import type { CountStore } from './rate-limit-store.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-caller limits per minute: ordinary routes, writes, and /sync (which costs n8n calls). */
    rateLimits: { read: number, write: number, sync: number }
    rateLimitedCount: () => number
  }
  interface FastifyContextConfig {
    /** A route's own budget per caller (`{ max, timeWindow }` in ms), or false for none. */
    rateLimit?: { max: number, timeWindow: number } | false
  }
}

// A user's key, made once per identity (the auth plugin hands out one identity object per
// verified token): the same string every time, so its hash is computed once, not per request.
const userKeys = new WeakMap<object, string>()

/** Whose budget a request spends: the user, the service (cron), or the address. */
function rateLimitKey (request: FastifyRequest): string {
  const user = request.user
  if (user) {
    let key = userKeys.get(user)
    if (key === undefined) userKeys.set(user, key = `user:${user.userId}`)
    return key
  }
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

  // The store being down must not take the API down with it: with Redis, counts fall back to this
  // process's memory while it is away (src/plugins/rate-limit-store.ts); a store error lets the
  // request through.
  const base = redis
    ? redisWithFallback(redis, 'workflow-sync:rl:', {
      onSwitch: (to, err) => {
        if (to === 'memory') app.log.warn({ err: err ? { message: err.message } : undefined }, 'rate limits: Redis unavailable; counting per process until it is back')
        else app.log.info('rate limits: counting in Redis again')
      }
    })
    : memoryStore()

  // Every route gets the read limit, or its own preset (config.rateLimit: a budget of its own, as
  // @fastify/rate-limit keeps one per route), or none (config.rateLimit: false). The hook runs
  // after authentication (route onRequest hooks), so the key is the user, not the address; before
  // the body is parsed and validated, so a limited caller costs no parsing and invalid requests count.
  app.addHook('onRoute', (route) => {
    const preset = route.config?.rateLimit
    if (preset === false) return
    const store = preset ? base.child({ continueExceeding: false, exponentialBackoff: false, routeInfo: route }) : base
    const hook = limitHook(store, preset ? preset.max : limits.read, preset ? preset.timeWindow : WINDOW_MS, () => { limited++ })
    route.preParsing = route.preParsing === undefined ? [hook] : [...(Array.isArray(route.preParsing) ? route.preParsing : [route.preParsing]), hook]
  })
}

const WINDOW_MS = 60_000

// A callback hook, no promise: with the in-memory store the common path is a map lookup and
// three headers (@fastify/rate-limit's own hook made three promises per request).
function limitHook (store: CountStore, max: number, windowMs: number, onLimited: () => void): preParsingHookHandler {
  const limitHeader = String(max)
  return function rateLimit (request, reply, payload, done) {
    store.incr(rateLimitKey(request), (err, res) => {
      if (err !== null || res === null) {
        done(null, payload)
        return
      }
      const resetSeconds = Math.max(0, Math.ceil(res.ttl / 1000))
      reply.header('x-ratelimit-limit', limitHeader)
      reply.header('x-ratelimit-remaining', String(Math.max(0, max - res.current)))
      reply.header('x-ratelimit-reset', String(resetSeconds))
      if (res.current <= max) {
        done(null, payload)
        return
      }
      onLimited()
      const retry = Math.max(1, resetSeconds)
      done(new AppError('rate_limited', `Too many requests: ${max} per minute; retry in ${retry} s`, { headers: { 'retry-after': String(retry) } }))
    }, windowMs, max)
  }
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['config'] })
