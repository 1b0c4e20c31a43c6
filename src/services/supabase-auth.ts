// Token verification by the Supabase project itself (`auth.getUser(token)` = GET /auth/v1/user),
// for tokens no local key can verify (TokenVerifierOptions.remoteVerify). Supabase Auth checks the
// signature, the expiry and that the session still exists; the claims are then the token's own
// payload (decoded here, trusted because Supabase accepted the token), checked again by the
// TokenVerifier (role, aud, iss, sub). The token is sent only to the project, never logged.
import { createClient } from '@supabase/supabase-js'
import { decodeJwt } from 'jose'
import { AppError } from '../errors.ts'
import type { VerifiedClaims } from './token-verifier.ts'

export interface SupabaseUserCheckOptions {
  url: string
  anonKey: string
  fetch?: typeof fetch
  now?: () => number
  /** Bound of each call to Supabase Auth, ms (default 15 000): beyond, 503. */
  timeoutMs?: number
}

const INVALID = (): AppError => new AppError('invalid_token', 'The access token is invalid', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } })
const EXPIRED = (): AppError => new AppError('token_expired', 'The access token has expired', {
  headers: { 'www-authenticate': 'Bearer error="invalid_token", error_description="The access token expired"' }
})

export function supabaseUserCheck (opts: SupabaseUserCheckOptions): (token: string) => Promise<VerifiedClaims> {
  const now = opts.now ?? Date.now
  // One client for every token: getUser(jwt) sends the given token and keeps no session.
  const base = opts.fetch ?? globalThis.fetch
  const timeoutMs = opts.timeoutMs ?? 15_000
  // supabase-js sets no timeout of its own: a silent project would hold the request forever.
  const bounded: typeof fetch = (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs)
    return base(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout })
  }
  const client = createClient(opts.url, opts.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: bounded }
  })
  return async (token: string): Promise<VerifiedClaims> => {
    let payload: Record<string, unknown>
    try {
      payload = decodeJwt(token)
    } catch {
      throw INVALID()
    }
    if (typeof payload.exp !== 'number' || typeof payload.role !== 'string') throw INVALID()
    // Expired: no need to ask.
    if (payload.exp * 1000 <= now()) throw EXPIRED()
    let result: Awaited<ReturnType<typeof client.auth.getUser>>
    try {
      result = await client.auth.getUser(token)
    } catch {
      throw new AppError('internal', 'The identity provider is unavailable', { status: 503, headers: { 'retry-after': '5' } })
    }
    const { data, error } = result
    if (error) {
      const status = (error as { status?: number }).status ?? 0
      if (status === 401 || status === 403 || status === 404 || status === 422 || status === 400) {
        throw /expired/i.test(error.message) ? EXPIRED() : INVALID()
      }
      throw new AppError('internal', 'The identity provider is unavailable', { status: 503, headers: { 'retry-after': '5' } })
    }
    const user = data.user
    if (!user || typeof payload.sub !== 'string' || user.id.toLowerCase() !== payload.sub.toLowerCase()) throw INVALID()
    return payload as VerifiedClaims
  }
}
