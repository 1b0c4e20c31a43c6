// The JWKS half of the verifier (asymmetric tokens: ES*/RS*/PS*/EdDSA): the key set is fetched
// once, cached, refreshed in the background when older than maxAgeMs, and refetched on an
// unknown `kid` at most once per cooldownMs; concurrent callers share one in-flight fetch. When
// no key set could ever be loaded → AppError('internal', status 503): the identity provider
// being unreachable is not the client's fault.
import { createLocalJWKSet } from 'jose'
import type { CryptoKey, JWK, JWTVerifyGetKey, ProtectedHeaderParameters } from 'jose'
import { AppError } from '../../errors.ts'
import { invalidToken } from './errors.ts'

interface KeySet {
  getKey: JWTVerifyGetKey
  kids: ReadonlySet<string>
  fetchedAt: number
}

export interface JwksKeysOptions {
  url: string
  cooldownMs: number
  maxAgeMs: number
  timeoutMs: number
  fetch: typeof fetch
  now: () => number
  onError: ((err: unknown) => void) | undefined
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export class JwksKeys {
  readonly #jwksUrl: string
  readonly #cooldownMs: number
  readonly #maxAgeMs: number
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch
  readonly #now: () => number
  readonly #onJwksError: ((err: unknown) => void) | undefined

  #keySet: KeySet | null = null
  #inflight: Promise<boolean> | null = null
  #lastFetchAt = Number.NEGATIVE_INFINITY
  readonly #stats = { jwksFetches: 0, jwksFetchFailures: 0 }

  constructor (o: JwksKeysOptions) {
    this.#jwksUrl = o.url
    this.#cooldownMs = o.cooldownMs
    this.#maxAgeMs = o.maxAgeMs
    this.#timeoutMs = o.timeoutMs
    this.#fetch = o.fetch
    this.#now = o.now
    this.#onJwksError = o.onError
  }

  get stats (): { jwksFetches: number, jwksFetchFailures: number, jwksFetchInFlight: boolean } {
    return { ...this.#stats, jwksFetchInFlight: this.#inflight !== null }
  }

  /** Fetch now (ignores the cooldown; shares an in-flight fetch). Resolves to whether a key set is available. */
  async load (): Promise<boolean> {
    await (this.#inflight ?? this.#startFetch())
    return this.#keySet !== null
  }

  /** The key for this token's header (`kid`, `alg`), or invalid_token. */
  async getKey (header: ProtectedHeaderParameters, alg: string): Promise<CryptoKey> {
    const kid = header.kid
    if (kid !== undefined && typeof kid !== 'string') throw invalidToken('kid')
    let set = await this.#currentKeySet()
    if (kid !== undefined && !set.kids.has(kid)) {
      // Unknown kid: maybe a rotation. One refetch, rate-limited, shared by concurrent callers.
      if (this.#inflight !== null) {
        await this.#inflight
      } else if (this.#now() - this.#lastFetchAt >= this.#cooldownMs) {
        await this.#startFetch()
      }
      set = this.#keySet ?? set
      if (!set.kids.has(kid)) throw invalidToken('unknown kid')
    }
    try {
      // jose filters by kid, kty/crv matching alg, `alg`/`use`/`key_ops` of the JWK, public only.
      return await set.getKey({ ...header, alg }, { payload: '', signature: '' }) as CryptoKey
    } catch (err) {
      throw invalidToken(`no usable key: ${(err as { code?: unknown } | null)?.code ?? 'error'}`)
    }
  }

  async #currentKeySet (): Promise<KeySet> {
    const set = this.#keySet
    const now = this.#now()
    if (set !== null) {
      if (now - set.fetchedAt >= this.#maxAgeMs && this.#inflight === null && now - this.#lastFetchAt >= this.#cooldownMs) {
        void this.#startFetch() // stale: refresh in the background, keep serving the known keys
      }
      return set
    }
    if (this.#inflight !== null) {
      await this.#inflight
    } else if (now - this.#lastFetchAt >= this.#cooldownMs) {
      await this.#startFetch()
    }
    if (this.#keySet !== null) return this.#keySet
    const retryAfter = Math.max(1, Math.ceil((this.#lastFetchAt + this.#cooldownMs - this.#now()) / 1000))
    throw new AppError('internal', 'Signing keys are unavailable', {
      status: 503,
      headers: { 'retry-after': String(retryAfter) },
      cause: 'jwks unavailable'
    })
  }

  /** Never rejects; resolves to whether the fetch succeeded. */
  #startFetch (): Promise<boolean> {
    this.#lastFetchAt = this.#now()
    this.#stats.jwksFetches++
    const promise = this.#fetchKeySet().then((set) => {
      this.#keySet = set
      return true
    }, (err: unknown) => {
      this.#stats.jwksFetchFailures++
      try { this.#onJwksError?.(err) } catch { /* a logger must not break auth */ }
      return false
    }).finally(() => {
      this.#inflight = null
    })
    this.#inflight = promise
    return promise
  }

  async #fetchKeySet (): Promise<KeySet> {
    const res = await this.#fetch(this.#jwksUrl, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.#timeoutMs)
    })
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      throw new Error(`JWKS fetch answered HTTP ${res.status}`)
    }
    const body: unknown = await res.json()
    if (!isRecord(body) || !Array.isArray(body.keys)) throw new Error('JWKS response is not a key set')
    // Only public asymmetric keys; a symmetric or private key in a JWKS is never used.
    const keys = (body.keys as unknown[]).filter((k): k is JWK =>
      isRecord(k) && typeof k.kty === 'string' && k.kty !== 'oct' && k.d === undefined && k.priv === undefined)
    const kids = new Set<string>()
    for (const k of keys) if (typeof k.kid === 'string') kids.add(k.kid)
    return { getKey: createLocalJWKSet({ keys }), kids, fetchedAt: this.#now() }
  }
}
