// THE mapping of database errors to the contract's problems: every layer that talks to a database
// (the pg Database, the Postgres store, the Supabase store) translates its errors here, and nowhere
// else.
//
//   - connectionProblem: a lost or refused connection is 503 database_unavailable (the Database
//     implementations apply it to every statement: the error is not the request's fault).
//   - sqlProblem: the SQL functions (supabase/migrations) raise `P0001` with
//     `hint = 'workflow_sync:<code>'`; constraint, permission and value errors have fixed problems.
//     The pg driver and PostgREST both pass `code`, `message` and `hint` through, so one mapping
//     serves both modes.
//   - databaseProblem: both, for the Postgres store's boundary.
//   - supabaseProblem: PostgREST's own errors (`PGRST…`, HTTP statuses, network failures), then
//     sqlProblem for the Postgres errors it relays.
// No message built here carries SQL, a key or a token; the original error rides along as `cause`
// (for the logs only).
import { AppError } from '../errors.ts'
import type { ProblemCode } from '../errors.ts'

/** Postgres errors that mean the database is unreachable or shutting down, not a bad query. */
export function isConnectionError (err: unknown): boolean {
  if (!err || typeof err !== 'object') return false
  const e = err as { code?: string, message?: string }
  const code = e.code ?? ''
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH'].includes(code)) return true
  // class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now;
  // 53300: too many connections; 3D000: the database does not exist (dropped, or a wrong URL);
  // 28000/28P01: the server refuses our credentials. None of them is the request's fault.
  if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300', '3D000', '28000', '28P01'].includes(code)) return true
  const msg = e.message ?? ''
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(msg)
}

export const HINT_PREFIX = 'workflow_sync:'

const HINT_CODES: ReadonlySet<ProblemCode> = new Set<ProblemCode>(['conflict', 'precondition_failed', 'forbidden', 'not_found', 'validation_failed'])

interface SqlErrorLike {
  code?: unknown
  message?: unknown
  hint?: unknown
}

function fields (err: unknown): { code: string, message: string, hint: string } {
  const e = (err && typeof err === 'object' ? err : {}) as SqlErrorLike
  return {
    code: typeof e.code === 'string' ? e.code : '',
    message: typeof e.message === 'string' ? e.message : '',
    hint: typeof e.hint === 'string' ? e.hint : ''
  }
}

export const MISSING_USER_MESSAGE = 'This token\'s user has no auth.users row in this project (the user was deleted, or the token comes from another project): nothing can be stored for it; sign in again'

/**
 * A foreign key to auth.users (mvp_workflows_user_id_fkey and the like, on a Supabase database):
 * the token is valid, but its user does not exist here. pg names the constraint in `constraint`;
 * PostgREST only in the message.
 */
function isMissingUser (err: unknown, message: string): boolean {
  const constraint = (err && typeof err === 'object' && typeof (err as { constraint?: unknown }).constraint === 'string') ? (err as { constraint: string }).constraint : ''
  const e = (err && typeof err === 'object' ? err : {}) as { detail?: unknown, details?: unknown }
  const details = typeof e.detail === 'string' ? e.detail : typeof e.details === 'string' ? e.details : ''
  const named = /_user_id_fkey$/.test(constraint) || /"[a-z_]+_user_id_fkey"/.test(message)
  // The key's table is auth.users ("users"), not another table's user_id.
  return named && (/table "users"/.test(details) || /table "users"/.test(message) || details === '')
}

/**
 * A Postgres error (pg, PGlite, or PostgREST's JSON of one) as a problem, or undefined when it is
 * not one the service expects (the caller then treats it as internal, or as a connection loss).
 */
export function sqlProblem (err: unknown): AppError | undefined {
  if (err instanceof AppError) return err
  const { code, message, hint } = fields(err)
  if (code === 'P0001' && hint.startsWith(HINT_PREFIX)) {
    const problem = hint.slice(HINT_PREFIX.length) as ProblemCode
    if (HINT_CODES.has(problem)) return new AppError(problem, message || 'The request cannot be done', { cause: err })
  }
  switch (code) {
    case 'P0002':
      // ingest_executions and friends: the workflow is gone (or not the caller's)
      return new AppError('not_found', 'Workflow not found (deleted during the sync?)', { cause: err })
    case '23503':
      if (isMissingUser(err, message)) return new AppError('forbidden', MISSING_USER_MESSAGE, { cause: err })
      return new AppError('conflict', 'A conflicting change was made at the same time; retry', { cause: err })
    case '23505':
      return new AppError('conflict', 'A conflicting change was made at the same time; retry', { cause: err })
    case '42501':
      return new AppError('forbidden', 'This credential may not do that', { cause: err })
    case '22P02':
    case '22023':
    case '22001':
    case '23502':
    case '23514':
      return new AppError('validation_failed', 'The database refused a value of this request', { cause: err })
    case '40001':
    case '40P01':
      return new AppError('conflict', 'The database aborted a concurrent change; retry', { headers: { 'retry-after': '1' }, cause: err })
  }
  return undefined
}

/** The 503 of a database that cannot be reached (`cause`: the connection error, for the logs). */
export function databaseUnavailable (cause: unknown): AppError {
  return new AppError('database_unavailable', 'The database is unavailable; try again shortly', { cause })
}

/** A lost connection as 503 database_unavailable; an AppError as it is; anything else unchanged. */
export function connectionProblem (err: unknown): unknown {
  if (err instanceof AppError) return err
  if (isConnectionError(err)) return databaseUnavailable(err)
  return err
}

/** For the Postgres store: a problem, a 503 for a lost connection, otherwise the error as it was. */
export function databaseProblem (err: unknown): unknown {
  return sqlProblem(err) ?? connectionProblem(err)
}

/** The conflict a lock wait that ran out answers (advisory lock_timeout, or a lease never freed). */
export const LOCK_BUSY_MESSAGE = 'Another operation on this resource is still running; retry shortly'

export function lockBusy (): AppError {
  return new AppError('conflict', LOCK_BUSY_MESSAGE, { headers: { 'retry-after': '5' } })
}

/** A PostgREST call that got no answer at all (supabase-js threw, or HTTP status 0). */
export function supabaseUnreachable (cause: unknown): AppError {
  return new AppError('database_unavailable', 'Supabase is unreachable; try again shortly', { headers: { 'retry-after': '2' }, cause })
}

/** What a supabase-js call answers on failure. */
export interface SupabaseFailure {
  /** PostgrestError-like JSON: { code, message, details, hint }, or an auth error. */
  error: { code?: string | undefined, message?: string | undefined, details?: string | null | undefined, hint?: string | null | undefined } | null
  /** HTTP status; 0 when the request never got an answer. */
  status: number
}

/** An unexpected answer from Supabase, kept for the logs (never carries a key or a token). */
export class SupabaseError extends Error {
  readonly code: string
  readonly status: number
  readonly details: string | null
  readonly hint: string | null
  constructor (f: SupabaseFailure) {
    super(f.error?.message || `Supabase answered HTTP ${f.status}`)
    this.name = 'SupabaseError'
    this.code = f.error?.code ?? ''
    this.status = f.status
    this.details = f.error?.details ?? null
    this.hint = f.error?.hint ?? null
  }
}

const SCHEMA_CODES = new Set(['PGRST202', 'PGRST204', 'PGRST205', '42883', '42P01', '42703', '3F000'])

export const SCHEMA_MISSING_MESSAGE = 'The Supabase project lacks the workflow-sync schema (or an older version of it): run `supabase db push` with the files of supabase/migrations'

/**
 * A failed supabase-js call as a problem. `scope` says whose credential was used: a 401 on a user's
 * token is the user's (invalid_token / token_expired); on the service-role key it is this
 * service's configuration (503).
 */
export function supabaseProblem (f: SupabaseFailure, scope: 'user' | 'service' | 'anon'): AppError | SupabaseError {
  const code = f.error?.code ?? ''
  const message = f.error?.message ?? ''
  if (f.status === 0) return supabaseUnreachable(new SupabaseError(f))
  if (f.status === 401 || /^PGRST3\d\d$/.test(code)) {
    if (scope === 'user') {
      return /expired/i.test(message)
        ? new AppError('token_expired', 'The access token has expired', { headers: { 'www-authenticate': 'Bearer error="invalid_token", error_description="The access token expired"' } })
        : new AppError('invalid_token', 'The access token is invalid', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } })
    }
    return new AppError('database_unavailable', 'Supabase refused this service\'s API key; check SUPABASE_ANON_KEY / SUPABASE_SERVICE_ROLE_KEY', { cause: new SupabaseError(f) })
  }
  if (code === 'PGRST116') return new AppError('not_found', 'Not found', { cause: new SupabaseError(f) })
  if (SCHEMA_CODES.has(code)) return new AppError('database_unavailable', SCHEMA_MISSING_MESSAGE, { cause: new SupabaseError(f) })
  const problem = sqlProblem(f.error)
  if (problem) return problem
  if (/^PGRST00\d$/.test(code) || /^08/.test(code) || /^53/.test(code) || /^57P0/.test(code) || code === '57014' ||
      f.status === 429 || f.status === 502 || f.status === 503 || f.status === 504 || f.status === 520) {
    return new AppError('database_unavailable', 'The Supabase database is unavailable; try again shortly', { headers: { 'retry-after': '2' }, cause: new SupabaseError(f) })
  }
  return new SupabaseError(f)
}
