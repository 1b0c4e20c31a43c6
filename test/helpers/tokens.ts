// Token minting for tests: Supabase-shaped access tokens (HS256 with the legacy secret, ES256 /
// RS256 with signing keys), legacy API-key JWTs, hand-crafted malformed tokens, and a local JWKS
// server that counts its requests.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWK, JWTPayload } from 'jose'

/** Default HS256 secret of the tests (≥ 32 chars, like a real Supabase JWT secret). */
export const TEST_JWT_SECRET = 'test-secret-for-workflow-sync-tests-0123456789abcdef'

/** Path under which Supabase publishes its signing keys. */
export const JWKS_PATH = '/auth/v1/.well-known/jwks.json'

export function randomUserId (): string {
  return randomUUID()
}

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

export function base64url (input: string | Uint8Array): string {
  return Buffer.from(input).toString('base64url')
}

/** Claims of a signed-in user's access token, as Supabase Auth issues them. */
export interface UserClaimsInput {
  sub?: string | null
  email?: string | null
  /** Seconds since the epoch; `null` leaves `exp` out. Default: in one hour. */
  exp?: number | null
  iat?: number | null
  /** `null` leaves `aud` out. Default `authenticated`. */
  aud?: string | string[] | null
  /** `null`/undefined leaves `iss` out. */
  iss?: string | null
  role?: string
  extra?: Record<string, unknown>
}

export function userClaims (input: UserClaimsInput = {}): JWTPayload & Record<string, unknown> {
  const now = nowSeconds()
  const claims: Record<string, unknown> = {
    aal: 'aal1',
    session_id: randomUUID(),
    is_anonymous: false,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {}
  }
  const sub = input.sub === undefined ? randomUserId() : input.sub
  if (sub !== null) claims.sub = sub
  const aud = input.aud === undefined ? 'authenticated' : input.aud
  if (aud !== null) claims.aud = aud
  if (input.iss !== undefined && input.iss !== null) claims.iss = input.iss
  claims.role = input.role ?? 'authenticated'
  const iat = input.iat === undefined ? now : input.iat
  if (iat !== null) claims.iat = iat
  const exp = input.exp === undefined ? now + 3600 : input.exp
  if (exp !== null) claims.exp = exp
  if (input.email !== null) claims.email = input.email ?? `${String(sub ?? 'user').slice(0, 8)}@example.test`
  claims.phone = ''
  return { ...claims, ...input.extra }
}

export interface MintUserTokenInput extends UserClaimsInput {
  /** Default TEST_JWT_SECRET. A Uint8Array is used as raw key bytes. */
  secret?: string | Uint8Array
  kid?: string
  alg?: 'HS256' | 'HS384' | 'HS512'
}

/** An HS256 (by default) user access token signed with the shared secret. */
export async function mintUserToken (input: MintUserTokenInput = {}): Promise<string> {
  const { secret = TEST_JWT_SECRET, kid, alg = 'HS256', ...claimInput } = input
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret
  const header: { alg: string, typ: string, kid?: string } = { alg, typ: 'JWT' }
  if (kid !== undefined) header.kid = kid
  return await new SignJWT(userClaims(claimInput)).setProtectedHeader(header).sign(key)
}

/**
 * A legacy Supabase API key (anon or service_role): `{ iss: 'supabase', ref, role, iat, exp }`,
 * no `sub`, no `aud`, HS256, valid for ten years by default.
 */
export async function mintLegacyKey (input: { secret?: string, role?: 'anon' | 'service_role', ref?: string, exp?: number } = {}): Promise<string> {
  const now = nowSeconds()
  const payload = {
    iss: 'supabase',
    ref: input.ref ?? 'testprojectref',
    role: input.role ?? 'service_role',
    iat: now,
    exp: input.exp ?? now + 10 * 365 * 24 * 3600
  }
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(input.secret ?? TEST_JWT_SECRET))
}

export type AsymmetricAlg = 'ES256' | 'RS256' | 'EdDSA'

export interface TestKeyPair {
  kid: string
  alg: AsymmetricAlg
  privateKey: CryptoKey
  publicKey: CryptoKey
  /** Public JWK with `kid`, `alg` and `use: 'sig'`, as Supabase publishes it. */
  publicJwk: JWK
}

export async function generateKeyPairWithJwk (alg: AsymmetricAlg, kid: string = randomUUID()): Promise<TestKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {})
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicKey, publicJwk }
}

export async function generateEs256KeyPair (kid?: string): Promise<TestKeyPair> {
  return await generateKeyPairWithJwk('ES256', kid)
}

export async function generateRs256KeyPair (kid?: string): Promise<TestKeyPair> {
  return await generateKeyPairWithJwk('RS256', kid)
}

/** Signs `claims` as they are (use `userClaims()` for a Supabase-shaped payload). */
export async function mintAsymmetricToken (alg: AsymmetricAlg, privateKey: CryptoKey, kid: string | undefined, claims: JWTPayload): Promise<string> {
  const header: { alg: string, typ: string, kid?: string } = { alg, typ: 'JWT' }
  if (kid !== undefined) header.kid = kid
  return await new SignJWT(claims).setProtectedHeader(header).sign(privateKey)
}

export async function mintEs256Token (privateKey: CryptoKey, kid: string | undefined, claims: JWTPayload = userClaims()): Promise<string> {
  return await mintAsymmetricToken('ES256', privateKey, kid, claims)
}

/** A token assembled by hand (e.g. `alg: none`); the signature is taken as given. */
export function craftToken (header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${signature}`
}

/** Replaces the signature with a different one of the same length. */
export function tamperSignature (token: string): string {
  const dot = token.lastIndexOf('.')
  const sig = Buffer.from(token.slice(dot + 1), 'base64url')
  sig[0] = (sig[0] ?? 0) ^ 0x01
  return `${token.slice(0, dot + 1)}${sig.toString('base64url')}`
}

export interface JwksServer {
  /** e.g. `http://127.0.0.1:54321` — what SUPABASE_URL would be. */
  baseUrl: string
  jwksUrl: string
  issuer: string
  /** Requests to the JWKS path so far. */
  readonly requestCount: number
  setKeys: (jwks: { keys: JWK[] }) => void
  /** Answer the JWKS path with this status (500, 404 …) instead of the keys; `null` = normal. */
  setFailure: (status: number | null) => void
  /** Delay every answer (to make requests overlap). */
  setDelay: (ms: number) => void
  close: () => Promise<void>
}

export async function startJwksServer (jwks: { keys: JWK[] } = { keys: [] }): Promise<JwksServer> {
  let keys = jwks
  let count = 0
  let failure: number | null = null
  let delay = 0
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname !== JWKS_PATH) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
      return
    }
    count++
    const answer = (): void => {
      if (failure !== null) {
        res.writeHead(failure, { 'content-type': 'application/json' }).end('{"error":"failure"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' })
        .end(JSON.stringify(keys))
    }
    if (delay > 0) setTimeout(answer, delay)
    else answer()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const { port } = server.address() as AddressInfo
  const baseUrl = `http://127.0.0.1:${port}`
  return {
    baseUrl,
    jwksUrl: `${baseUrl}${JWKS_PATH}`,
    issuer: `${baseUrl}/auth/v1`,
    get requestCount () { return count },
    setKeys (next) { keys = next },
    setFailure (status) { failure = status },
    setDelay (ms) { delay = ms },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
