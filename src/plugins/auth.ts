import { timingSafeEqual, createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TokenVerifier } from '../services/token-verifier.ts'
import { supabaseUserCheck } from '../services/supabase-auth.ts'
import type { UserIdentity } from '../services/token-verifier.ts'
import { AppError } from '../errors.ts'
import { serviceScope, userScope } from '../store/scope.ts'
import type { Scope } from '../store/scope.ts'
import type { UserClaims } from '../db/database.ts'

declare module 'fastify' {
  interface FastifyInstance {
    tokenVerifier: TokenVerifier
    /** onRequest hook: a signed-in Supabase user (role authenticated). */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
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

function bearerToken (request: FastifyRequest): string {
  const header = request.headers.authorization
  const m = header ? BEARER.exec(header) : null
  if (!m?.[1]) throw new AppError('invalid_token', 'An access token is required: Authorization: Bearer <token>', { headers: { 'www-authenticate': 'Bearer' } })
  return m[1]
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

  // The verifier answers a cached token with the same frozen claims object until its exp: the
  // identity and the scope's claims made from it are kept beside it (weakly: they go when the
  // cache entry does), so a repeated token costs no new objects and the database reuses its RLS
  // preamble. The token itself is not kept (the scope carrying it is made per request).
  const sessions = new WeakMap<object, { identity: UserIdentity, claims: UserClaims }>()

  async function authenticate (request: FastifyRequest): Promise<void> {
    const token = bearerToken(request)
    try {
      const identity = await verifier.verifyUser(token)
      let session = sessions.get(identity.claims)
      if (session === undefined) {
        session = { identity, claims: Object.freeze({ ...identity.claims, sub: identity.userId, role: 'authenticated' as const }) }
        sessions.set(identity.claims, session)
      }
      request.user = session.identity
      request.scope = userScope(session.claims, token)
    } catch (err) {
      throw withChallenge(err)
    }
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
      await authenticate(request)
    } catch (err) {
      throw withChallenge(err)
    }
  }

  app.decorate('authenticate', authenticate)
  app.decorate('authenticateCron', authenticateCron)
  app.decorate('authenticateUserOrCron', authenticateUserOrCron)
}

export default fp(authPlugin, { name: 'auth', dependencies: ['config'] })
