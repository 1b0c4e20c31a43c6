// Verification of Supabase access tokens (and legacy Supabase API-key JWTs).
//
// Plain class, no Fastify: the auth plugin, the cron routes, benchmarks and tests use it directly.
//
// Rules (see docs: shared/reference/supabase-auth-and-rls.md, contract "Authentication"):
// - The key is chosen by the header's `alg` *before* anything else is trusted:
//   HS256 → only the shared secret; ES*/RS*/PS*/EdDSA → only the JWKS (key by `kid`, algorithm
//   pinned to the key's type by jose). `none`, other HS algorithms, JWE, anything unknown → 401.
//   An asymmetric token is never tried with the secret, an HS token never with a JWKS key.
// - `exp` is required (Supabase always sets it, legacy API keys too); `nbf` is honoured.
// - Errors are generic: `invalid_token` or `token_expired` (401), `forbidden` (403) when the
//   signature is good but the role does not fit the route. The failing check is only kept in the
//   error's non-enumerable `cause` (for server logs), never in the message.
// - The JWKS is fetched once, cached, refreshed in the background when older than
//   jwksCacheMaxAgeMs, and refetched on an unknown `kid` at most once per jwksCooldownMs; concurrent
//   callers share one in-flight fetch. When no key set could ever be loaded → AppError('internal',
//   status 503): the identity provider being unreachable is not the client's fault.
//   (./token-verifier/jwks.ts; the error answers in ./token-verifier/errors.ts.)
// - Successful verifications are cached until the token's `exp` (never beyond); bounded, the
//   least recently used goes first. Failures are never cached. An entry holds the whole token and
//   a hit must equal it: exact, and a map lookup instead of a SHA-256 per request (a process
//   whose memory can be read gives away the signing secret it holds anyway). The map's key is the
//   token's last KEY_CHARS characters (the end of its signature), so a lookup hashes those, not
//   the ~250 of the token; and a hit moves its entry to the young end at most once per
//   TOUCH_MS, not on every request (the move is a Map delete and set, ~0.5 µs). A user's identity
//   is built once per cache entry and answered synchronously on a hit (cachedUser: the auth
//   hook's fast path).
// - Remote fallback (option remoteVerify, Supabase's `auth.getUser`): only for an HS256 token while
//   no secret is configured (a project on the legacy secret whose secret this service was not
//   given). The provider's answer is cached like a local one, but at most remoteCacheTtlMs; the
//   role/aud/iss/sub checks of verifyUser / verifyService apply to its claims all the same.
import { webcrypto } from 'node:crypto'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import type { CryptoKey, ProtectedHeaderParameters } from 'jose'
import { isUuid } from '../lib/ids.ts'
import { forbidden, invalidToken, tokenExpired } from './token-verifier/errors.ts'
import { JwksKeys } from './token-verifier/jwks.ts'

export interface VerifiedClaims {
  sub?: string
  role: string
  aud?: string | string[]
  iss?: string
  exp: number
  iat?: number
  email?: string
  [k: string]: unknown
}

export interface UserIdentity {
  userId: string
  email: string | null
  role: 'authenticated'
  /** `exp` of the token, in seconds since the epoch. */
  expiresAt: number
  claims: VerifiedClaims
}

export interface TokenVerifierOptions {
  /** Legacy HS256 secret (`SUPABASE_JWT_SECRET`). Empty string = not configured. */
  jwtSecret?: string
  /** Address of the JWKS (`${SUPABASE_URL}/auth/v1/.well-known/jwks.json`). */
  jwksUrl?: string
  /** When set, `verifyUser` requires `iss` to equal it. */
  issuer?: string
  /** Audience that `verifyUser` requires in `aud`. Default `authenticated`. */
  audience?: string
  /** Leeway for `exp`/`nbf`, seconds. Default 5. */
  clockToleranceSec?: number
  /** Minimum time between two JWKS fetches (unknown-`kid` refetches, retries). Default 30 000. */
  jwksCooldownMs?: number
  /** Age after which the key set is refreshed in the background. Default 600 000 (10 min). */
  jwksCacheMaxAgeMs?: number
  /** Timeout of one JWKS fetch. Default 5 000. */
  jwksTimeoutMs?: number
  /** Size of the verified-token cache; 0 disables it. Default 10 000. */
  cacheMaxEntries?: number
  fetch?: typeof fetch
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number
  /** Called when a JWKS fetch fails (for logging). */
  onJwksError?: (err: unknown) => void
  /**
   * Fallback for tokens that no local key can verify (an HS256 token while no jwtSecret is
   * configured): asks the identity provider (Supabase: `auth.getUser(token)`) and answers the
   * token's claims, or throws invalid_token / token_expired (401) or a 503. The answer is cached
   * like a local verification, until the token's `exp` and at most `remoteCacheTtlMs`.
   */
  remoteVerify?: (token: string) => Promise<VerifiedClaims>
  /** Longest a remotely verified token is trusted without asking again. Default 300 000 (5 min). */
  remoteCacheTtlMs?: number
}

export interface TokenVerifierStats {
  /** verify() answered from the cache. */
  cacheHits: number
  /** verify() had to check the token. */
  cacheMisses: number
  cacheSize: number
  /** Calls of jose's jwtVerify (signature checks actually performed). */
  signatureVerifications: number
  /** Tokens checked with the identity provider (remoteVerify). */
  remoteVerifications: number
  jwksFetches: number
  jwksFetchFailures: number
  /** A JWKS fetch is running right now. */
  jwksFetchInFlight: boolean
}

/** Longer than any header Node accepts by default (16 KiB); anything longer is garbage. */
const MAX_TOKEN_LENGTH = 16_384
const ASYMMETRIC_ALGS: ReadonlySet<string> = new Set([
  'ES256', 'ES384', 'ES512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'EdDSA', 'Ed25519'
])
function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function audienceIncludes (aud: unknown, expected: string): boolean {
  if (typeof aud === 'string') return aud === expected
  return Array.isArray(aud) && aud.includes(expected)
}

function positiveOr (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`TokenVerifier: ${name} must be a number ≥ 0`)
  return value
}

/** How much of a token's end keys the cache (a hit still compares the whole token). */
const KEY_CHARS = 32
/** A hit moves its entry to the young end when it was last moved at least this long ago. */
const TOUCH_MS = 1000

const COMPACT_JWS_CHARS = /^[A-Za-z0-9_.-]+$/

const cacheKeyOf = (token: string): string => token.length <= KEY_CHARS ? token : token.slice(-KEY_CHARS)

interface CacheEntry {
  /** The whole token: a lookup by its key is a hit only when the token is this one. */
  token: string
  claims: VerifiedClaims
  expMs: number
  /** When the entry was last moved to the young end. */
  touchedMs: number
  /** verifyUser's answer for these claims, made on first use. */
  user?: UserIdentity
}

export class TokenVerifier {
  readonly #secret: Uint8Array | undefined
  #hmacKey: Promise<CryptoKey> | undefined
  readonly #jwks: JwksKeys | undefined
  readonly #issuer: string | undefined
  readonly #audience: string
  readonly #clockTolerance: number
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #remoteVerify: ((token: string) => Promise<VerifiedClaims>) | undefined
  readonly #remoteTtlMs: number
  /** Claims that came from remoteVerify (their cache entries get the shorter bound). */
  readonly #remoteClaims = new WeakSet<object>()

  readonly #cache = new Map<string, CacheEntry>()
  readonly #pending = new Map<string, Promise<VerifiedClaims>>()
  readonly #stats = { cacheHits: 0, cacheMisses: 0, signatureVerifications: 0, remoteVerifications: 0 }

  constructor (options: TokenVerifierOptions) {
    const secret = options.jwtSecret === undefined || options.jwtSecret === '' ? undefined : options.jwtSecret
    const jwksUrl = options.jwksUrl === undefined || options.jwksUrl === '' ? undefined : options.jwksUrl
    if (secret === undefined && jwksUrl === undefined) {
      throw new TypeError('TokenVerifier needs a jwtSecret or a jwksUrl')
    }
    if (jwksUrl !== undefined) {
      const url = new URL(jwksUrl) // throws on garbage: fail at boot, not per request
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('TokenVerifier: jwksUrl must be http(s)')
    }
    this.#secret = secret === undefined ? undefined : new TextEncoder().encode(secret)
    this.#issuer = options.issuer === '' ? undefined : options.issuer
    this.#audience = options.audience ?? 'authenticated'
    this.#clockTolerance = positiveOr(options.clockToleranceSec, 5, 'clockToleranceSec')
    const cooldownMs = positiveOr(options.jwksCooldownMs, 30_000, 'jwksCooldownMs')
    const maxAgeMs = positiveOr(options.jwksCacheMaxAgeMs, 600_000, 'jwksCacheMaxAgeMs')
    const timeoutMs = positiveOr(options.jwksTimeoutMs, 5_000, 'jwksTimeoutMs')
    this.#maxEntries = Math.floor(positiveOr(options.cacheMaxEntries, 10_000, 'cacheMaxEntries'))
    this.#now = options.now ?? Date.now
    this.#jwks = jwksUrl === undefined
      ? undefined
      : new JwksKeys({ url: jwksUrl, cooldownMs, maxAgeMs, timeoutMs, fetch: options.fetch ?? globalThis.fetch, now: this.#now, onError: options.onJwksError })
    this.#remoteVerify = options.remoteVerify
    this.#remoteTtlMs = positiveOr(options.remoteCacheTtlMs, 300_000, 'remoteCacheTtlMs')
  }

  get stats (): TokenVerifierStats {
    const jwks = this.#jwks?.stats ?? { jwksFetches: 0, jwksFetchFailures: 0, jwksFetchInFlight: false }
    return { ...this.#stats, cacheSize: this.#cache.size, ...jwks }
  }

  /** Forget all cached verifications (e.g. after a key was revoked). */
  clearCache (): void {
    this.#cache.clear()
  }

  /**
   * Fetch the JWKS now (ignores the cooldown; shares an in-flight fetch). Meant for boot, so that
   * the first request does not pay for the fetch. Resolves to whether a key set is available.
   */
  async loadKeys (): Promise<boolean> {
    return await (this.#jwks?.load() ?? false)
  }

  /** Signature, `exp`, `nbf`. No audience/issuer/role checks (see verifyUser / verifyService). */
  async verify (token: string): Promise<VerifiedClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw invalidToken('malformed')
    }
    const hit = this.#hit(token)
    if (hit !== undefined) return hit.claims
    // Parallel requests with the same token (a page load) share one check.
    const pending = this.#pending.get(token)
    if (pending !== undefined) return pending
    this.#stats.cacheMisses++
    const promise = this.#check(token).then((claims) => {
      this.#remember(token, claims)
      return claims
    }).finally(() => {
      this.#pending.delete(token)
    })
    this.#pending.set(token, promise)
    return promise
  }

  /** A signed-in user's access token → the user (the same object while the token is cached). */
  async verifyUser (token: string): Promise<UserIdentity> {
    const claims = await this.verify(token)
    const entry = this.#cache.get(cacheKeyOf(token))
    if (entry !== undefined && entry.claims === claims) return (entry.user ??= this.#userOf(claims))
    return this.#userOf(claims)
  }

  /**
   * verifyUser's answer when the token is cached and names a user, synchronously; undefined
   * otherwise (then verifyUser verifies it, or says why not).
   */
  cachedUser (token: string): UserIdentity | undefined {
    const hit = this.#hit(token)
    if (hit === undefined) return undefined
    if (hit.user !== undefined) return hit.user
    try {
      return (hit.user = this.#userOf(hit.claims))
    } catch {
      return undefined
    }
  }

  /**
   * The live cache entry of exactly this token (moved to the young end when it was last moved
   * TOUCH_MS ago or more), or undefined; an expired one is dropped.
   */
  #hit (token: string): CacheEntry | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined
    const key = cacheKeyOf(token)
    const hit = this.#cache.get(key)
    // Another token with the same end is a miss; its entry stays (it is someone's valid token).
    if (hit === undefined || hit.token !== token) return undefined
    const now = this.#now()
    if (now >= hit.expMs) {
      this.#cache.delete(key)
      return undefined
    }
    this.#stats.cacheHits++
    if (now - hit.touchedMs >= TOUCH_MS) {
      hit.touchedMs = now
      this.#cache.delete(key)
      this.#cache.set(key, hit)
    }
    return hit
  }

  #userOf (claims: VerifiedClaims): UserIdentity {
    // Role first: a valid anon / service_role key is a real credential, just not a user's.
    if (claims.role !== 'authenticated') throw forbidden('This route needs a signed-in user')
    if (!audienceIncludes(claims.aud, this.#audience)) throw invalidToken('aud')
    if (this.#issuer !== undefined && claims.iss !== this.#issuer) throw invalidToken('iss')
    if (!isUuid(claims.sub)) throw invalidToken('sub')
    return {
      userId: claims.sub.toLowerCase(),
      email: typeof claims.email === 'string' && claims.email !== '' ? claims.email : null,
      role: 'authenticated',
      expiresAt: claims.exp,
      claims
    }
  }

  /** A service-role JWT (legacy service key or a gateway-minted one) → its claims. */
  async verifyService (token: string): Promise<VerifiedClaims> {
    const claims = await this.verify(token)
    if (claims.role !== 'service_role') throw forbidden('This route needs the service role')
    return claims
  }

  #remember (token: string, claims: VerifiedClaims): void {
    if (this.#maxEntries === 0) return
    const now = this.#now()
    const expMs = this.#remoteClaims.has(claims) ? Math.min(claims.exp * 1000, now + this.#remoteTtlMs) : claims.exp * 1000
    if (now >= expMs) return // accepted within the clock tolerance only: don't keep it
    const key = cacheKeyOf(token)
    // The key's own entry first (another token with the same end: the newer one stays).
    this.#cache.delete(key)
    while (this.#cache.size >= this.#maxEntries) {
      const oldest = this.#cache.keys().next()
      if (oldest.done === true) break
      this.#cache.delete(oldest.value)
    }
    this.#cache.set(key, { token, claims, expMs, touchedMs: now })
  }

  async #check (token: string): Promise<VerifiedClaims> {
    // Compact JWS only (a JWE has five parts), in its alphabet: base64url and the two dots. (A
    // decoder may skip other characters; a cached token so never holds whitespace, which the auth
    // hook's fast path relies on.)
    if (!COMPACT_JWS_CHARS.test(token)) throw invalidToken('malformed')
    const first = token.indexOf('.')
    const second = first < 0 ? -1 : token.indexOf('.', first + 1)
    if (first <= 0 || second < 0 || token.indexOf('.', second + 1) !== -1) throw invalidToken('malformed')

    let header: ProtectedHeaderParameters
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw invalidToken('malformed header')
    }
    const alg = header.alg
    if (typeof alg !== 'string') throw invalidToken('alg')

    let key: CryptoKey
    if (alg === 'HS256') {
      if (this.#secret === undefined) {
        if (this.#remoteVerify === undefined) throw invalidToken('HS256 without a secret')
        // No local key can verify it: the identity provider decides.
        this.#stats.remoteVerifications++
        const claims = await this.#remoteVerify(token)
        if (typeof claims.role !== 'string' || typeof claims.exp !== 'number') throw invalidToken('remote claims')
        if (claims.exp * 1000 <= this.#now()) {
          throw tokenExpired()
        }
        const frozen = deepFreeze({ ...claims })
        this.#remoteClaims.add(frozen)
        return frozen
      }
      key = await this.#getHmacKey()
    } else if (ASYMMETRIC_ALGS.has(alg)) {
      if (this.#jwks === undefined) throw invalidToken('asymmetric alg without a JWKS')
      key = await this.#jwks.getKey(header, alg)
    } else {
      throw invalidToken('alg')
    }

    let payload: Record<string, unknown>
    try {
      this.#stats.signatureVerifications++
      const result = await jwtVerify(token, key, {
        algorithms: [alg],
        clockTolerance: this.#clockTolerance,
        currentDate: new Date(this.#now()),
        requiredClaims: ['exp']
      })
      payload = result.payload
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'ERR_JWT_EXPIRED') {
        throw tokenExpired()
      }
      throw invalidToken(`jose: ${(err as { code?: unknown } | null)?.code ?? 'error'}`)
    }
    if (typeof payload.role !== 'string') throw invalidToken('role')
    return deepFreeze(payload) as VerifiedClaims
  }

  #getHmacKey (): Promise<CryptoKey> {
    if (this.#hmacKey === undefined) {
      const secret = this.#secret as Uint8Array<ArrayBuffer>
      this.#hmacKey = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    }
    return this.#hmacKey
  }
}
