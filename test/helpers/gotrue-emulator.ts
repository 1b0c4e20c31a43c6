// The Supabase Auth (GoTrue) endpoints the service and the dashboard use, for the emulated
// project (test/helpers/postgrest-emulator.ts routes /auth/v1/* here):
//   POST /auth/v1/token?grant_type=password  {email, password}  → a session (access_token minted
//        with the project's JWT secret, shaped like GoTrue's: iss, sub, aud, role, session_id, amr…)
//   POST /auth/v1/token?grant_type=refresh_token  {refresh_token} → a new session; the refresh
//        token is rotated (a used one answers refresh_token_already_used, as GoTrue without reuse
//        interval does)
//   POST /auth/v1/logout?scope=local|global|others  (Bearer access token) → 204, session ended
//   GET  /auth/v1/user  (Bearer access token) → the user
// Users live in `auth.users` of the real database (email, bcrypt `encrypted_password` checked by
// pgcrypto's crypt() — GoTrue's own column and hash); sessions and refresh tokens in memory
// (GoTrue keeps them in auth.sessions / auth.refresh_tokens: not emulated in SQL).
// Errors are GoTrue's JSON: `{code, error_code, msg}`, or `{code, message}` with the
// X-Supabase-Api-Version header when the client asks for API version 2024-01-01 (auth-js does).
import { randomBytes, randomUUID } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import pg from 'pg'
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose'

export interface AuthAnswer { status: number, body: string, headers: Record<string, string> }

interface Session { id: string, userId: string, ended: boolean }

/** SQL that gives a plain Postgres the part of GoTrue's `auth.users` used here (no-op on Supabase). */
const USERS_DDL = `
create schema if not exists auth;
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  created_at timestamptz,
  updated_at timestamptz,
  is_anonymous boolean not null default false
);`

export interface GotrueEmulator {
  /** Calls of GET /auth/v1/user. */
  readonly userCalls: number
  /** Issued sessions (sign-ins and refreshes), ended ones included. */
  readonly sessions: number
  handle (method: string, url: URL, headers: Headers, body: unknown): Promise<AuthAnswer | null>
  /** A user in auth.users with a bcrypt password (creates the table on a plain Postgres). */
  createUser (input: { email: string, password: string, id?: string, confirmed?: boolean }): Promise<{ id: string, email: string }>
}

export function gotrueEmulator (pool: pg.Pool, opts: { issuer: string, key: KeyObject, accessTokenLifetimeS?: number }): GotrueEmulator {
  const lifetime = opts.accessTokenLifetimeS ?? 3600
  const sessions = new Map<string, Session>()
  const refreshTokens = new Map<string, { sessionId: string, used: boolean }>()
  const state = { userCalls: 0, issued: 0 }
  let ddl: Promise<unknown> | undefined

  const answer = (status: number, body: unknown, headers: Record<string, string> = {}): AuthAnswer =>
    ({ status, body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })
  function fail (headers: Headers, status: number, code: string, msg: string): AuthAnswer {
    const v = headers.get('x-supabase-api-version')
    if (v !== null && v >= '2024-01-01') return answer(status, { code, message: msg }, { 'x-supabase-api-version': '2024-01-01' })
    return answer(status, { code: status, error_code: code, msg })
  }

  interface UserRow { id: string, email: string, aud: string | null, role: string | null, email_confirmed_at: string | null, last_sign_in_at: string | null, raw_app_meta_data: unknown, raw_user_meta_data: unknown, created_at: string | null, updated_at: string | null, is_anonymous: boolean }
  const USER_COLUMNS = 'id::text, email, aud, role, email_confirmed_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous'
  const iso = (v: unknown): string | null => v instanceof Date ? v.toISOString() : (v as string | null)
  function userJson (u: UserRow): Record<string, unknown> {
    return {
      id: u.id,
      aud: u.aud ?? 'authenticated',
      role: u.role ?? 'authenticated',
      email: u.email,
      email_confirmed_at: iso(u.email_confirmed_at),
      phone: '',
      confirmed_at: iso(u.email_confirmed_at),
      last_sign_in_at: iso(u.last_sign_in_at),
      app_metadata: u.raw_app_meta_data ?? { provider: 'email', providers: ['email'] },
      user_metadata: u.raw_user_meta_data ?? {},
      identities: [],
      created_at: iso(u.created_at),
      updated_at: iso(u.updated_at),
      is_anonymous: u.is_anonymous
    }
  }

  async function issue (u: UserRow, sessionId: string, amr: string): Promise<AuthAnswer> {
    state.issued++
    const now = Math.floor(Date.now() / 1000)
    const user = userJson(u)
    const accessToken = await new SignJWT({
      aud: u.aud ?? 'authenticated',
      role: u.role ?? 'authenticated',
      email: u.email,
      phone: '',
      app_metadata: user.app_metadata,
      user_metadata: user.user_metadata,
      aal: 'aal1',
      amr: [{ method: amr, timestamp: now }],
      session_id: sessionId,
      is_anonymous: u.is_anonymous
    }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer(opts.issuer).setSubject(u.id).setIssuedAt(now).setExpirationTime(now + lifetime).sign(opts.key)
    const refreshToken = randomBytes(9).toString('base64url')
    refreshTokens.set(refreshToken, { sessionId, used: false })
    return answer(200, { access_token: accessToken, token_type: 'bearer', expires_in: lifetime, expires_at: now + lifetime, refresh_token: refreshToken, user, weak_password: null })
  }

  async function passwordGrant (headers: Headers, body: Record<string, unknown>): Promise<AuthAnswer> {
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : ''
    const password = typeof body.password === 'string' ? body.password : ''
    if (!email || !password) return fail(headers, 400, 'validation_failed', 'missing email or phone')
    const r = await pool.query<UserRow & { ok: boolean }>(
      `select ${USER_COLUMNS}, (encrypted_password is not null and encrypted_password = extensions.crypt($2, encrypted_password)) as ok
         from auth.users where lower(email) = $1 limit 1`, [email, password]).catch((err: { code?: string }) => {
      if (err.code === '42P01') return { rows: [] }
      throw err
    })
    const u = r.rows[0]
    if (!u || !u.ok) return fail(headers, 400, 'invalid_credentials', 'Invalid login credentials')
    if (!u.email_confirmed_at) return fail(headers, 400, 'email_not_confirmed', 'Email not confirmed')
    await pool.query('update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1', [u.id])
    const session: Session = { id: randomUUID(), userId: u.id, ended: false }
    sessions.set(session.id, session)
    return await issue({ ...u, last_sign_in_at: new Date().toISOString() }, session.id, 'password')
  }

  async function refreshGrant (headers: Headers, body: Record<string, unknown>): Promise<AuthAnswer> {
    const token = typeof body.refresh_token === 'string' ? body.refresh_token : ''
    const rt = refreshTokens.get(token)
    const session = rt ? sessions.get(rt.sessionId) : undefined
    if (!rt || !session || session.ended) return fail(headers, 400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found')
    if (rt.used) return fail(headers, 400, 'refresh_token_already_used', 'Invalid Refresh Token: Already Used')
    rt.used = true
    const r = await pool.query<UserRow>(`select ${USER_COLUMNS} from auth.users where id = $1`, [session.userId])
    if (!r.rows[0]) return fail(headers, 403, 'user_not_found', 'User from sub claim in JWT does not exist')
    return await issue(r.rows[0], session.id, 'password')
  }

  /** The claims of a valid user access token, or the GoTrue error to answer. */
  async function bearer (headers: Headers): Promise<{ sub: string, claims: Record<string, unknown> } | AuthAnswer> {
    const m = /^Bearer (\S+)$/.exec(headers.get('authorization') ?? '')
    if (!m) return fail(headers, 401, 'no_authorization', 'This endpoint requires a valid Bearer token')
    try {
      const { payload } = await jwtVerify(m[1]!, opts.key, { algorithms: ['HS256'] })
      if (typeof payload.sub !== 'string') return fail(headers, 403, 'bad_jwt', 'invalid claim: missing sub claim')
      // A session this server ended (logout): GoTrue finds no row for the token's session_id.
      const sid = typeof payload.session_id === 'string' ? sessions.get(payload.session_id) : undefined
      if (sid?.ended) return fail(headers, 403, 'session_not_found', 'Session from session_id claim in JWT does not exist')
      return { sub: payload.sub, claims: payload as Record<string, unknown> }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return fail(headers, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired')
      return fail(headers, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature, signature is invalid')
    }
  }

  async function user (headers: Headers): Promise<AuthAnswer> {
    state.userCalls++
    const b = await bearer(headers)
    if ('status' in b) return b
    const c = b.claims
    // Tokens the tests mint themselves have no auth.users row: answered from the claims, as before.
    return answer(200, { id: b.sub, aud: c.aud ?? 'authenticated', role: c.role, email: c.email ?? '', app_metadata: {}, user_metadata: {}, created_at: new Date(0).toISOString() })
  }

  async function logout (headers: Headers, scope: string): Promise<AuthAnswer> {
    const b = await bearer(headers)
    if ('status' in b) return b
    const sid = typeof b.claims.session_id === 'string' ? b.claims.session_id : undefined
    for (const s of sessions.values()) {
      const same = s.id === sid
      if (s.userId === b.sub && (scope === 'global' || (scope === 'others' ? !same : same))) s.ended = true
    }
    return { status: 204, body: '', headers: {} }
  }

  return {
    get userCalls () { return state.userCalls },
    get sessions () { return state.issued },
    async handle (method, url, headers, body) {
      const obj = body !== null && typeof body === 'object' && !Array.isArray(body) ? body as Record<string, unknown> : {}
      if (url.pathname === '/auth/v1/user' && method === 'GET') return await user(headers)
      if (url.pathname === '/auth/v1/token' && method === 'POST') {
        const grant = url.searchParams.get('grant_type')
        if (grant === 'password') return await passwordGrant(headers, obj)
        if (grant === 'refresh_token') return await refreshGrant(headers, obj)
        return fail(headers, 400, 'validation_failed', `unsupported_grant_type (${grant ?? 'none'} is not emulated)`)
      }
      if (url.pathname === '/auth/v1/logout' && method === 'POST') return await logout(headers, url.searchParams.get('scope') ?? 'global')
      return null
    },
    async createUser (input) {
      ddl ??= pool.query(USERS_DDL)
      await ddl
      const id = input.id ?? randomUUID()
      const email = input.email.toLowerCase()
      await pool.query(
        `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
         values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, extensions.crypt($3, extensions.gen_salt('bf')),
                 case when $4 then now() end, '{"provider":"email","providers":["email"]}', '{}', now(), now())`,
        [id, email, input.password, input.confirmed !== false])
      return { id, email }
    }
  }
}
