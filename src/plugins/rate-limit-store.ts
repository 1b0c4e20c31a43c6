// The rate limiter's store with a fallback: counts in Redis (shared by every replica) while Redis
// answers, and in this process's memory while it does not (Redis down, slow past
// REDIS_TIMEOUT_MS, or reconnecting). Limits so degrade to per-process instead of vanishing, and
// go back to the shared counts as soon as ioredis has reconnected (it retries by itself).
// Built on @fastify/rate-limit's own Redis and in-memory stores (same semantics, same keys); the
// hook that drives them is src/plugins/rate-limit.ts.
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

type Cb = (err: Error | null, res: { current: number, ttl: number } | null) => void
/** A counter store: `incr` answers the key's count in its window and the window's ms left. */
export interface CountStore {
  incr(key: string, cb: Cb, timeWindow: number, max: number): void
  child(routeOptions: unknown): CountStore
}
type StoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, ...rest: unknown[]) => CountStore

const require = createRequire(import.meta.url)
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as StoreCtor
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as StoreCtor

export interface FallbackEvents {
  /** Called when counting switches between Redis and memory. */
  onSwitch?: (to: 'redis' | 'memory', err?: Error) => void
}

/** Counts in this process's memory (an LRU of 5 000 keys per store). */
export function memoryStore (): CountStore {
  return new LocalStore(false, false, 5000)
}

/** Counts in Redis, in memory while Redis does not answer. */
export function redisWithFallback (redis: Redis, nameSpace: string, events: FallbackEvents = {}): CountStore {
  const state = { mode: 'redis' as 'redis' | 'memory' }
  const switchTo = (to: 'redis' | 'memory', err?: Error): void => {
    if (state.mode === to) return
    state.mode = to
    events.onSwitch?.(to, err)
  }

  class Pair implements CountStore {
    readonly shared: CountStore
    readonly local: CountStore
    constructor (shared: CountStore, local: CountStore) {
      this.shared = shared
      this.local = local
    }

    incr (key: string, cb: Cb, timeWindow: number, max: number): void {
      const local = (): void => { this.local.incr(key, cb, timeWindow, max) }
      if (redis.status !== 'ready') {
        switchTo('memory')
        local()
        return
      }
      this.shared.incr(key, (err, res) => {
        if (err) {
          switchTo('memory', err)
          local()
          return
        }
        switchTo('redis')
        cb(null, res)
      }, timeWindow, max)
    }

    child (routeOptions: unknown): CountStore { return new Pair(this.shared.child(routeOptions), this.local.child(routeOptions)) }
  }

  return new Pair(new RedisStore(false, false, redis, nameSpace), new LocalStore(false, false, 5000))
}
