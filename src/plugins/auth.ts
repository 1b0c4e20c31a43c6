import { timingSafeEqual, createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { TokenVerifier } from '../services/token-verifier.ts'
import { supabaseUserCheck } from '../services/supabase-auth.ts'
import type { UserIdentity } from '../services/token-verifier.ts'
import { AppError } from '../errors.ts'
import { serviceScope, userScope } from '../store/scope.ts'
import type { Scope } from '../store/scope.ts'

declare module 'fastify' {
  interface FastifyInstance {
    tokenVerifier: TokenVerifier
    /** onRequest hook: a signed-in Supabase user (role authenticated). */
    authenticate: onRequestHookHandler
    /** onRequest hook: the cron credential (CRON_SECRET or a service_role JWT). */
    authenticateCron: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** onRequest hook: either of the two; request.scope tells which. */
    authenticateUserOrCron: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    user: UserIdentity | null
    scope: Scope | null
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
function bearerOf (header: string | undefined): string | undefined {
  return (header ? BEARER.exec(header) : null)?.[1]
}

function missingToken (): AppError {
  return new AppError('invalid_token', 'An access token is required: Authorization: Bearer <token>', { headers: { 'www-authenticate': 'Bearer' } })
}

function bearerToken (request: FastifyRequest): string {
  const token = bearerOf(request.headers.authorization)
  if (!token) throw missingToken()
  return token
}

function withChallenge (err: unknown): unknown {
  if (err instanceof AppError && (err.code === 'invalid_token' || err.code === 'token_expired')) {
    const error = err.code === 'token_expired' ? 'invalid_token", error_description="The access token expired' : 'invalid_token'
    return new AppError(err.code, err.message, { headers: { 'www-authenticate': `Bearer error="${error}"` } })
  }
  return err
}

async function authPlugin (app: FastifyInstance, opts: { tokenVerifier?: TokenVerifier }): Promise<void> {
  const c = app.config
  // Without the legacy secret, an HS256 token cannot be verified locally: with the project's URL
  // and anon key, Supabase Auth itself is asked (auth.getUser), and its answer cached.
  const remote = !c.SUPABASE_JWT_SECRET && c.SUPABASE_URL && c.SUPABASE_ANON_KEY
    ? supabaseUserCheck({ url: c.SUPABASE_URL, anonKey: c.SUPABASE_ANON_KEY, timeoutMs: c.SUPABASE_TIMEOUT_MS })
    : undefined
  const verifier = opts.tokenVerifier ?? new TokenVerifier({
    ...(c.SUPABASE_JWT_SECRET ? { jwtSecret: c.SUPABASE_JWT_SECRET } : {}),
    ...(c.jwksUrl ? { jwksUrl: c.jwksUrl } : {}),
    ...(c.issuer ? { issuer: c.issuer } : {}),
    ...(remote ? { remoteVerify: remote } : {})
  })
  if (remote && !opts.tokenVerifier) app.log.info('auth: no SUPABASE_JWT_SECRET; HS256 tokens are verified by Supabase Auth (GET /auth/v1/user), cached until their exp (at most 5 min)')
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const cronDigest = c.CRON_SECRET ? createHash('sha256').update(c.CRON_SECRET).digest() : null
  const isCronSecret = (token: string): boolean => {
    if (!cronDigest) return false
    return timingSafeEqual(createHash('sha256').update(token).digest(), cronDigest)
  }

  app.decorate('tokenVerifier', verifier)
  app.decorateRequest('user', null)
  app.decorateRequest('scope', null)

  // The verifier answers a cached token with the same identity object until its exp (the cache is
  // keyed by the token): the scope made from it, with the user's claims for RLS and the token, is
  // kept beside it (weakly: it goes when the cache entry does), so a repeated token costs no new
  // objects and the database reuses its RLS preamble.
  const scopes = new WeakMap<UserIdentity, Scope>()

  function attach (request: FastifyRequest, identity: UserIdentity, token: string): void {
    let scope = scopes.get(identity)
    if (scope === undefined) {
      scope = userScope(Object.freeze({ ...identity.claims, sub: identity.userId, role: 'authenticated' as const }), token)
      scopes.set(identity, scope)
    }
    request.user = identity
    request.scope = scope
  }

  // `token`: the caller's bearer token, as the caller already read it (undefined: none was sent).
  async function authenticate (request: FastifyRequest, token: string | undefined): Promise<void> {
    if (!token) throw missingToken()
    try {
      attach(request, await verifier.verifyUser(token), token)
    } catch (err) {
      throw withChallenge(err)
    }
  }

  // The hook: a cached token is answered synchronously (no promise on the common path).
  const authenticateHook: onRequestHookHandler = (request, _reply, done) => {
    const header = request.headers.authorization
    // `Bearer <token>` with a token the verifier holds: equal to a token that was verified, so of
    // its alphabet (no whitespace), and bearerOf would read the same; no regex on this path.
    if (header !== undefined && header.startsWith('Bearer ')) {
      const token = header.slice(7)
      const identity = verifier.cachedUser(token)
      if (identity !== undefined) {
        attach(request, identity, token)
        done()
        return
      }
    }
    // Any other spelling, or a token not cached yet: read by the regex and verified (a cached
    // token in another spelling is still answered from the cache, through verifyUser).
    authenticate(request, bearerOf(header)).then(() => { done() }, (err: unknown) => { done(err as Error) })
  }

  async function authenticateCron (request: FastifyRequest): Promise<void> {
    const token = bearerToken(request)
    if (isCronSecret(token)) {
      request.scope = serviceScope
      return
    }
    try {
      await verifier.verifyService(token)
      request.scope = serviceScope
    } catch (err) {
      throw withChallenge(err)
    }
  }

  async function authenticateUserOrCron (request: FastifyRequest): Promise<void> {
    const token = bearerToken(request)
    if (isCronSecret(token)) {
      request.scope = serviceScope
      return
    }
    try {
      const claims = await verifier.verify(token)
      if (claims.role === 'service_role') {
        await verifier.verifyService(token)
        request.scope = serviceScope
        return
      }
      await authenticate(request, token)
    } catch (err) {
      throw withChallenge(err)
    }
  }

  app.decorate('authenticate', authenticateHook)
  app.decorate('authenticateCron', authenticateCron)
  app.decorate('authenticateUserOrCron', authenticateUserOrCron)
}

export default fp(authPlugin, { name: 'auth', dependencies: ['config'] })
