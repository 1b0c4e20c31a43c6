// A small Supabase (PostgREST + the auth server's /user) emulation for the tests, served through
// nock, with every answer COMPUTED BY A REAL POSTGRES: a request is checked the way Supabase checks
// it (an `apikey` header, a bearer JWT verified with the project's secret), then run in a
// transaction as the JWT's role with `request.jwt.claims` set (exactly how PostgREST applies RLS),
// and answered in PostgREST's documented format:
//   GET/DELETE /rest/v1/<table>?select=a,b:c::text&col=eq.v&or=(...)&order=c.desc.nullslast&limit=n
//     → a JSON array (Postgres's own to_json of each row), or one object for
//       `Accept: application/vnd.pgrst.object+json` (406 PGRST116 unless exactly one row);
//       DELETE with `Prefer: return=representation` answers the deleted rows, otherwise 204.
//   POST /rest/v1/rpc/<fn> with a JSON object of named arguments → the function's result as JSON
//     (an array of rows for set-returning functions), the overload chosen by argument names.
//   Errors: `{ code, message, details, hint }` with PostgREST's HTTP status for the SQLSTATE.
//   /auth/v1/* → Supabase Auth's password and refresh grants, logout and /user (gotrue-emulator.ts).
// Only the subset the Supabase store uses is understood; anything else answers an error (the test
// then fails), so the store cannot drift into requests a real PostgREST would refuse.
//
// One request handler (`createSupabaseHandler`, fetch Request in, [status, body, headers] out)
// serves two ways: through nock, in-process (`startPostgrestEmulator`, the store and service
// tests), and behind a real HTTP server with Realtime beside it (supabase-stand-in.ts, for a
// browser). nock 15 hands reply functions the fetch Request (the body is read from it per
// request): the `(uri, body) => …` form is unreliable under fetch, so it is not used.
import { createSecretKey } from 'node:crypto'
import nock from 'nock'
import pg from 'pg'
import { jwtVerify, errors as joseErrors } from 'jose'
import { gotrueEmulator } from './gotrue-emulator.ts'
import type { GotrueEmulator } from './gotrue-emulator.ts'
import { mintLegacyKey, TEST_JWT_SECRET } from './tokens.ts'

export interface RecordedRequest {
  method: string
  path: string
  params: Array<[string, string]>
  apikey: string | null
  authorization: string | null
  accept: string | null
  prefer: string | null
  contentType: string | null
  body: unknown
  /** The JWT's role and sub as the emulator verified them (null when rejected). */
  role: string | null
  sub: string | null
  status: number
}

export type Injected = { kind: 'network' } | { kind: 'status', status: number, body: unknown }

export interface PostgrestEmulator {
  url: string
  anonKey: string
  serviceKey: string
  requests: RecordedRequest[]
  /** Calls of GET /auth/v1/user. */
  authUserCalls: number
  /** The next matching requests fail this way (in order). */
  inject(failure: Injected, match?: (method: string, path: string) => boolean): void
  /** A random delay per answer (interleaves concurrent requests). */
  setJitter(ms: number): void
  stop(): Promise<void>
}

export interface Claims {
  role: string
  sub?: string
  [k: string]: unknown
}

class HttpError extends Error {
  readonly status: number
  readonly body: Record<string, unknown>
  constructor (status: number, body: Record<string, unknown>) {
    super(String(body.message ?? body.msg ?? status))
    this.status = status
    this.body = body
  }
}

const pgrst = (status: number, code: string, message: string, details: string | null = null, hint: string | null = null): HttpError =>
  new HttpError(status, { code, details, hint, message })

const IDENT = /^[a-z_][a-z0-9_]*$/
const CAST = /^[a-z_][a-z0-9_ ]*(\[\])?$/
const TABLES = new Set(['mvp_workflows', 'workflow_executions', 'sync_logs', 'idempotency_keys', 'workflow_events', 'workflow_events_purged', 'workflow_sync_locks'])
const OPS: Record<string, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' }

function ident (name: string): string {
  if (!IDENT.test(name)) throw pgrst(400, 'PGRST100', `"failed to parse" ${name}`)
  return `"${name}"`
}

/** PostgREST's SQLSTATE → HTTP status table (docs: Errors → HTTP Status Codes). */
export function statusForSqlState (code: string, role: string): number {
  if (/^08/.test(code)) return 503
  if (/^09/.test(code)) return 500
  if (/^0L/.test(code) || /^0P/.test(code)) return 403
  if (code === '23503' || code === '23505') return 409
  if (code === '25006') return 405
  if (/^25/.test(code)) return 500
  if (/^28/.test(code)) return 403
  if (/^(2D|38|39|3B|40)/.test(code)) return 500
  if (code === '53400') return 500
  if (/^53/.test(code)) return 503
  if (/^(54|55|57|58|F0|HV|XX)/.test(code)) return 500
  if (code === 'P0001') return 400
  if (/^P0/.test(code)) return 500
  if (code === '42883' || code === '42P01') return 404
  if (code === '42501') return role === 'anon' ? 401 : 403
  const custom = /^PT(\d{3})$/.exec(code)
  if (custom) return Number(custom[1])
  return 400
}

// ---- query string → SQL -----------------------------------------------------------------------

function splitTop (s: string): string[] {
  const out: string[] = []
  let depth = 0
  let quoted = false
  let cur = ''
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!
    if (quoted) {
      cur += ch
      if (ch === '\\' && i + 1 < s.length) { cur += s[++i]; continue }
      if (ch === '"') quoted = false
      continue
    }
    if (ch === '"') { quoted = true; cur += ch; continue }
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; continue }
    cur += ch
  }
  if (cur !== '') out.push(cur)
  return out
}

function unquote (v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1')
  return v
}

function selectList (select: string | null): string {
  if (select === null || select === '*' || select === '') return '*'
  return splitTop(select).map((item) => {
    const m = /^(?:([a-z_][a-z0-9_]*):)?([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_ ]*(?:\[\])?))?$/.exec(item.trim())
    if (!m) throw pgrst(400, 'PGRST100', `"failed to parse select parameter (${select})"`)
    const [, alias, col = '', cast] = m
    if (cast !== undefined && !CAST.test(cast)) throw pgrst(400, 'PGRST100', `"failed to parse select parameter (${select})"`)
    const expr = cast ? `${ident(col)}::${cast}` : ident(col)
    return `${expr} as ${ident(alias ?? col)}`
  }).join(', ')
}

class Params {
  readonly values: unknown[] = []
  add (v: unknown): string {
    this.values.push(v)
    return `$${this.values.length}`
  }
}

function condition (col: string, opAndValue: string, p: Params): string {
  const dot = opAndValue.indexOf('.')
  if (dot < 0) throw pgrst(400, 'PGRST100', `"failed to parse filter (${opAndValue})"`)
  const op = opAndValue.slice(0, dot)
  const raw = opAndValue.slice(dot + 1)
  const c = ident(col)
  if (op in OPS) return `${c} ${OPS[op]} ${p.add(unquote(raw))}`
  if (op === 'is') {
    if (raw === 'null') return `${c} is null`
    if (raw === 'true' || raw === 'false') return `${c} is ${raw}`
    throw pgrst(400, 'PGRST100', `"failed to parse filter (${opAndValue})"`)
  }
  if (op === 'in') {
    if (!raw.startsWith('(') || !raw.endsWith(')')) throw pgrst(400, 'PGRST100', `"failed to parse filter (${opAndValue})"`)
    const items = raw.slice(1, -1) === '' ? [] : splitTop(raw.slice(1, -1)).map(unquote)
    return `${c} = any(${p.add(items)})`
  }
  throw pgrst(400, 'PGRST100', `"failed to parse filter (${opAndValue})"`)
}

/** A logic tree: `(a.eq.1,and(b.lt."x",c.is.null))` under `or` / `and`. */
function logicTree (kind: 'or' | 'and', body: string, p: Params): string {
  if (!body.startsWith('(') || !body.endsWith(')')) throw pgrst(400, 'PGRST100', `"failed to parse logic tree (${body})"`)
  const parts = splitTop(body.slice(1, -1)).map((part) => {
    const nested = /^(or|and)(\(.*\))$/.exec(part)
    if (nested) return logicTree(nested[1] as 'or' | 'and', nested[2]!, p)
    const dot = part.indexOf('.')
    if (dot < 0) throw pgrst(400, 'PGRST100', `"failed to parse logic tree (${body})"`)
    return condition(part.slice(0, dot), part.slice(dot + 1), p)
  })
  return `(${parts.join(kind === 'or' ? ' or ' : ' and ')})`
}

function orderBy (order: string | null): string {
  if (!order) return ''
  return ' order by ' + order.split(',').map((term) => {
    const [col = '', ...mods] = term.split('.')
    let sql = ident(col)
    for (const m of mods) {
      if (m === 'asc' || m === 'desc') sql += ` ${m}`
      else if (m === 'nullsfirst') sql += ' nulls first'
      else if (m === 'nullslast') sql += ' nulls last'
      else throw pgrst(400, 'PGRST100', `"failed to parse order (${order})"`)
    }
    return sql
  }).join(', ')
}

function tableQuery (params: URLSearchParams, p: Params): { select: string, where: string, order: string, limit: string } {
  const where: string[] = []
  let limit = ''
  for (const [k, v] of params) {
    if (k === 'select' || k === 'order') continue
    if (k === 'limit' || k === 'offset') {
      if (!/^\d+$/.test(v)) throw pgrst(400, 'PGRST100', `"failed to parse ${k}"`)
      limit += ` ${k} ${v}`
      continue
    }
    if (k === 'or' || k === 'and') {
      where.push(logicTree(k, v, p))
      continue
    }
    where.push(condition(k, v, p))
  }
  return { select: selectList(params.get('select')), where: where.length ? ` where ${where.join(' and ')}` : '', order: orderBy(params.get('order')), limit }
}

// ---- the emulator ------------------------------------------------------------------------------

/** The emulated project's request handling, shared by the nock and the real-HTTP front ends. */
export interface SupabaseHandler extends Omit<PostgrestEmulator, 'stop'> {
  /** One request → [status, body, headers]; throws (a network failure) for an injected `network`. */
  handle (req: Request): Promise<[number, string, Record<string, string>]>
  auth: GotrueEmulator
  pool: pg.Pool
  /** The claims of a valid JWT of the project (PostgREST's checks and errors). */
  claimsOf (token: string): Promise<Claims>
  /** `fn` in a transaction as the JWT's role with request.jwt.claims set (how PostgREST applies RLS). */
  inRole<T> (claims: Claims, fn: (c: pg.PoolClient) => Promise<T>): Promise<T>
  close (): Promise<void>
}

export async function createSupabaseHandler (databaseUrl: string, opts: { url: string, jwtSecret?: string }): Promise<SupabaseHandler> {
  const url = opts.url
  const secret = opts.jwtSecret ?? TEST_JWT_SECRET
  const key = createSecretKey(Buffer.from(secret))
  const anonKey = await mintLegacyKey({ secret, role: 'anon' })
  const serviceKey = await mintLegacyKey({ secret, role: 'service_role' })
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 })
  pool.on('error', () => {})
  const requests: RecordedRequest[] = []
  const injected: Array<{ failure: Injected, match: (m: string, p: string) => boolean }> = []
  let jitter = 0
  const auth = gotrueEmulator(pool, { issuer: `${url}/auth/v1`, key })

  async function claimsOf (token: string): Promise<Claims> {
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] })
      if (typeof payload.role !== 'string') throw pgrst(401, 'PGRST301', 'JWT role claim missing')
      return payload as Claims
    } catch (err) {
      if (err instanceof HttpError) throw err
      if (err instanceof joseErrors.JWTExpired) throw pgrst(401, 'PGRST303', 'JWT expired')
      throw pgrst(401, 'PGRST301', 'JWSError JWSInvalidSignature')
    }
  }

  async function inRole<T> (claims: Claims, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await pool.connect()
    try {
      await c.query('begin')
      await c.query(`set local role ${ident(claims.role)}`)
      await c.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(claims)])
      const out = await fn(c)
      await c.query('commit')
      return out
    } catch (err) {
      await c.query('rollback').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  async function table (method: string, name: string, params: URLSearchParams, headers: Headers, claims: Claims): Promise<{ status: number, body: string | null, headers: Record<string, string> }> {
    if (!TABLES.has(name)) throw pgrst(404, 'PGRST205', `Could not find the table 'public.${name}' in the schema cache`)
    const p = new Params()
    const q = tableQuery(params, p)
    const single = (headers.get('accept') ?? '').startsWith('application/vnd.pgrst.object+json')
    let rows: string[]
    if (method === 'GET' || method === 'HEAD') {
      rows = await inRole(claims, async (c) => (await c.query<{ j: string }>(
        `select to_json(_r)::text as j from (select ${q.select} from public.${ident(name)}${q.where}${q.order}${q.limit}) _r`, p.values)).rows.map((r) => r.j))
    } else if (method === 'DELETE') {
      if (q.order || q.limit) throw pgrst(400, 'PGRST100', 'order/limit on DELETE is not supported here')
      const returning = (headers.get('prefer') ?? '').includes('return=representation')
      rows = await inRole(claims, async (c) => (await c.query<{ j: string }>(
        `with _d as (delete from public.${ident(name)}${q.where} returning *) select to_json(_r)::text as j from (select ${q.select} from _d) _r`, p.values)).rows.map((r) => r.j))
      if (!returning) return { status: 204, body: null, headers: {} }
    } else {
      throw pgrst(405, 'PGRST117', `Unsupported HTTP method: ${method} (not emulated)`)
    }
    const range = { 'content-range': rows.length ? `0-${rows.length - 1}/*` : '*/*' }
    if (single) {
      if (rows.length !== 1) throw pgrst(406, 'PGRST116', 'JSON object requested, multiple (or no) rows returned', `The result contains ${rows.length} rows`)
      return { status: 200, body: rows[0]!, headers: range }
    }
    return { status: 200, body: `[${rows.join(',')}]`, headers: range }
  }

  interface Fn { retset: boolean, rettype: string, args: Array<{ name: string, type: string }>, required: number }

  async function findFunction (name: string, keys: string[]): Promise<Fn> {
    const res = await pool.query<{ retset: boolean, rettype: string, names: string[] | null, types: string[], modes: string[] | null, nargs: number, ndefaults: number }>(
      `select p.proretset as retset, p.prorettype::regtype::text as rettype, p.proargnames as names,
              array(select format_type(t, null) from unnest(p.proargtypes) t) as types,
              p.proargmodes::text[] as modes, p.pronargs as nargs, p.pronargdefaults as ndefaults
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proname = $1`, [name])
    for (const r of res.rows) {
      // input arguments: the first pronargs names whose mode is in / inout / variadic (or all, without modes)
      const names = (r.names ?? []).filter((_n, i) => !r.modes || ['i', 'b', 'v'].includes(r.modes[i] ?? 'i')).slice(0, r.nargs)
      if (names.length !== r.nargs) continue
      const args = names.map((n, i) => ({ name: n, type: r.types[i] ?? 'text' }))
      const required = r.nargs - r.ndefaults
      const known = new Set(names)
      if (!keys.every((k) => known.has(k))) continue
      if (!names.slice(0, required).every((n) => keys.includes(n))) continue
      return { retset: r.retset, rettype: r.rettype, args, required }
    }
    throw pgrst(404, 'PGRST202', `Could not find the function public.${name}(${keys.join(', ')}) in the schema cache`, null,
      'If a new function was created in the database with this name and parameters, try reloading the schema cache.')
  }

  async function rpc (name: string, body: unknown, claims: Claims): Promise<{ status: number, body: string | null, headers: Record<string, string> }> {
    if (!IDENT.test(name)) throw pgrst(404, 'PGRST202', `Could not find the function public.${name}`)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw pgrst(400, 'PGRST102', 'Invalid body')
    const keys = Object.keys(body)
    const fn = await findFunction(name, keys)
    const used = fn.args.filter((a) => keys.includes(a.name))
    const record = used.map((a) => `${ident(a.name)} ${a.type}`).join(', ')
    const call = `public.${ident(name)}(${used.map((a) => `${ident(a.name)} => _a.${ident(a.name)}`).join(', ')})`
    const from = used.length ? ` from json_to_record($1::json) as _a(${record})` : ''
    const params = used.length ? [JSON.stringify(body)] : []
    if (fn.retset) {
      const rows = await inRole(claims, async (c) => (await c.query<{ j: string }>(
        used.length ? `select to_json(_r)::text as j${from}, lateral ${call} _r` : `select to_json(_r)::text as j from ${call} _r`, params)).rows.map((r) => r.j))
      return { status: 200, body: `[${rows.join(',')}]`, headers: {} }
    }
    if (fn.rettype === 'void') {
      await inRole(claims, (c) => c.query(`select ${call}${from}`, params))
      return { status: 204, body: null, headers: {} }
    }
    const r = await inRole(claims, async (c) => (await c.query<{ j: string | null }>(`select to_json(${call})::text as j${from}`, params)).rows[0]?.j ?? null)
    return { status: 200, body: r ?? 'null', headers: {} }
  }

  async function handle (req: Request): Promise<[number, string, Record<string, string>]> {
    const u = new URL(req.url)
    const text = req.method === 'GET' || req.method === 'HEAD' ? '' : await req.text()
    const rec: RecordedRequest = {
      method: req.method,
      path: u.pathname,
      params: [...u.searchParams],
      apikey: req.headers.get('apikey'),
      authorization: req.headers.get('authorization'),
      accept: req.headers.get('accept'),
      prefer: req.headers.get('prefer'),
      contentType: req.headers.get('content-type'),
      body: text === '' ? null : (() => { try { return JSON.parse(text) } catch { return text } })(),
      role: null,
      sub: null,
      status: 0
    }
    requests.push(rec)
    if (jitter > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * jitter))
    const i = injected.findIndex((x) => x.match(req.method, u.pathname))
    if (i >= 0) {
      const failure = injected.splice(i, 1)[0]!.failure
      if (failure.kind === 'network') {
        rec.status = -1
        throw Object.assign(new Error('connect ECONNREFUSED (injected)'), { code: 'ECONNREFUSED' })
      }
      rec.status = failure.status
      return [failure.status, JSON.stringify(failure.body), { 'content-type': 'application/json' }]
    }
    const json = { 'content-type': 'application/json; charset=utf-8' }
    try {
      // The API gateway: no apikey, no entry (GET /auth/v1/user is answered without, as before).
      const apikey = req.headers.get('apikey')
      const gatewayChecked = !(u.pathname === '/auth/v1/user' && req.method === 'GET')
      if (gatewayChecked && apikey !== anonKey && apikey !== serviceKey) {
        throw new HttpError(401, { message: apikey ? 'Invalid API key' : 'No API key found in request', hint: 'No `apikey` request header or url param was found.' })
      }
      if (u.pathname.startsWith('/auth/v1/')) {
        const a = await auth.handle(req.method, u, req.headers, rec.body)
        if (!a) throw new HttpError(404, { code: 404, error_code: 'not_found', msg: `${req.method} ${u.pathname} is not emulated` })
        rec.status = a.status
        return [a.status, a.body, a.headers]
      }
      const bearer = /^Bearer (\S+)$/.exec(req.headers.get('authorization') ?? '')?.[1] ?? apikey ?? ''
      const claims = await claimsOf(bearer)
      rec.role = claims.role
      rec.sub = typeof claims.sub === 'string' ? claims.sub : null
      for (const h of ['accept-profile', 'content-profile']) {
        const profile = req.headers.get(h)
        if (profile !== null && profile !== 'public') throw pgrst(406, 'PGRST106', 'The schema must be one of the following: public')
      }
      let out: { status: number, body: string | null, headers: Record<string, string> }
      const rpcMatch = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(u.pathname)
      const tableMatch = /^\/rest\/v1\/([^/]+)$/.exec(u.pathname)
      if (rpcMatch && req.method === 'POST') {
        if (!(rec.contentType ?? '').startsWith('application/json')) throw pgrst(415, 'PGRST107', 'Content-Type not acceptable')
        if (u.search !== '') throw pgrst(400, 'PGRST100', 'rpc query parameters are not emulated')
        out = await rpc(rpcMatch[1]!, rec.body, claims)
      } else if (tableMatch) {
        out = await table(req.method, tableMatch[1]!, u.searchParams, req.headers, claims)
      } else {
        throw pgrst(404, 'PGRST125', `Invalid path ${u.pathname}`)
      }
      rec.status = out.status
      return [out.status, out.body ?? '', { ...(out.body === null ? {} : json), ...out.headers }]
    } catch (err) {
      if (err instanceof HttpError) {
        rec.status = err.status
        return [err.status, JSON.stringify(err.body), json]
      }
      const e = err as { code?: string, message?: string, detail?: string, hint?: string }
      if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
        const status = statusForSqlState(e.code, rec.role ?? 'anon')
        rec.status = status
        return [status, JSON.stringify({ code: e.code, details: e.detail ?? null, hint: e.hint ?? null, message: e.message ?? '' }), json]
      }
      throw err
    }
  }

  return {
    url,
    anonKey,
    serviceKey,
    requests,
    get authUserCalls () { return auth.userCalls },
    inject (failure, match = () => true) { injected.push({ failure, match }) },
    setJitter (ms) { jitter = ms },
    handle,
    auth,
    pool,
    claimsOf,
    inRole,
    async close () { await pool.end() }
  }
}

/** The emulated project in-process, through nock (for tests that run the store or the app in this process). */
export async function startPostgrestEmulator (databaseUrl: string, opts: { url?: string, jwtSecret?: string } = {}): Promise<PostgrestEmulator> {
  const url = opts.url ?? `http://supabase-${Math.random().toString(36).slice(2, 8)}.test`
  const h = await createSupabaseHandler(databaseUrl, { ...opts, url })
  const scopes = ['GET', 'POST', 'PATCH', 'DELETE', 'HEAD'].map((method) =>
    nock(url).persist().intercept(/.*/, method).reply(async (req: unknown) => await h.handle(req as Request)))
  return {
    url,
    anonKey: h.anonKey,
    serviceKey: h.serviceKey,
    requests: h.requests,
    get authUserCalls () { return h.authUserCalls },
    inject: h.inject,
    setJitter: h.setJitter,
    async stop () {
      // (nock.cleanAll() in the test's teardown removes the interceptors)
      for (const s of scopes) s.persist(false)
      await h.close()
    }
  }
}
