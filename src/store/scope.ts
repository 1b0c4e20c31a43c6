import type { Database, Queryable, UserClaims } from '../db/database.ts'
import { AppError } from '../errors.ts'

export type { UserClaims } from '../db/database.ts'

// Who a piece of work runs as: a signed-in user under RLS, or the service (cron routes only).
// A user scope made by the auth plugin also carries the caller's raw access token, which the
// Supabase store forwards so that Supabase's own RLS applies. The token is a non-enumerable
// property: JSON.stringify, pino and util.inspect never show it, and a spread copy drops it.
export type Scope =
  | { kind: 'user', userId: string, claims: UserClaims, readonly accessToken?: string }
  | { kind: 'service' }

export function userScope (claims: UserClaims, accessToken?: string): Scope {
  const scope: Scope = { kind: 'user', userId: claims.sub, claims }
  if (accessToken !== undefined) {
    Object.defineProperty(scope, 'accessToken', { value: accessToken, enumerable: false, writable: false, configurable: false })
  }
  return scope
}

export const serviceScope: Scope = { kind: 'service' }

export function inScope<T> (db: Database, scope: Scope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return scope.kind === 'user' ? db.withUser(scope.claims, fn) : db.asService(fn)
}

/**
 * For reads of one statement each: a user's statements run under RLS in one round trip each
 * (Database.readAsUser); the service's in a transaction.
 */
export function readInScope<T> (db: Database, scope: Scope, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (scope.kind !== 'user') return db.asService(fn)
  const claims = scope.claims
  return fn({ query: (sql, params) => db.readAsUser(claims, sql, params) })
}

/** Work that only the service's own (cron) scope may ask for: a user scope is refused. */
export function serviceOnly (scope: Scope, what: string): void {
  if (scope.kind !== 'service') throw new AppError('forbidden', `${what} is the service's own work`)
}
