// The Supabase store's supabase-js clients, and how their answers become values or problems.
//
// WHO ASKS. A user's work goes through a client made for that request's access token
// (`Authorization: Bearer <the caller's token>`, `apikey: <anon key>`), so Supabase's own RLS
// decides what exists, exactly as for the user's own supabase-js calls. Clients are cached by the
// exact token string (bounded, and never past the token's `exp`): two requests share a client only
// when they carry the same token, so a request can never use another user's credential.
//
// The service-role client is for what the service records (and for cron work); without
// SUPABASE_SERVICE_ROLE_KEY it answers 503 with what to set. No key or token is ever logged or put
// into an error.
import { createClient } from '@supabase/supabase-js'
import type { SupabaseClient } from '@supabase/supabase-js'
import { AppError } from '../errors.ts'
import { supabaseProblem, supabaseUnreachable } from '../db/errors.ts'
import type { Scope } from './scope.ts'

export type Client = SupabaseClient
export type Who = 'user' | 'service' | 'anon'

export interface PostgrestAnswer<T> {
  data: T | null
  error: { code?: string, message?: string, details?: string | null, hint?: string | null } | null
  status: number
}

export interface ClientOptions {
  url: string
  anonKey: string
  serviceRoleKey?: string | undefined
  fetch?: typeof fetch | undefined
  timeoutMs: number
  retry: boolean
  cacheSize: number
  now: () => number
}

/** The 503 a user's write or sync answers in Supabase mode without the service-role key. */
export const SERVICE_KEY_NEEDED_FOR_USER_WRITES = 'Supabase mode records deploys, sync results, idempotency records and locks with the service-role key, and SUPABASE_SERVICE_ROLE_KEY is not set: reads work, writes and syncs need it'

const CLIENT_AUTH = { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } as const

export class SupabaseClients {
  readonly #o: ClientOptions
  readonly #clients = new Map<string, { client: Client, expMs: number }>()
  #service: Client | null = null
  #anon: Client | null = null
  /** Clients made so far (tests: the cache works). */
  created = 0

  constructor (o: ClientOptions) {
    this.#o = o
  }

  get hasServiceRole (): boolean {
    return this.#o.serviceRoleKey !== undefined
  }

  #make (key: string, bearer?: string): Client {
    this.created++
    return createClient(this.#o.url, key, {
      auth: CLIENT_AUTH,
      db: { timeout: this.#o.timeoutMs, retry: this.#o.retry },
      global: {
        ...(bearer !== undefined ? { headers: { Authorization: `Bearer ${bearer}` } } : {}),
        ...(this.#o.fetch ? { fetch: this.#o.fetch } : {})
      }
    })
  }

  /** The service-role client; 503 (with what to set) when the key is not configured. */
  service (forUser: boolean): Client {
    const key = this.#o.serviceRoleKey
    if (key === undefined) {
      throw new AppError('database_unavailable', forUser ? SERVICE_KEY_NEEDED_FOR_USER_WRITES : 'Cron work in Supabase mode needs SUPABASE_SERVICE_ROLE_KEY, which is not set', { status: 503 })
    }
    this.#service ??= this.#make(key)
    return this.#service
  }

  anon (): Client {
    this.#anon ??= this.#make(this.#o.anonKey)
    return this.#anon
  }

  /** The client a scope's reads go through: the caller's own token, or the service role. */
  for (scope: Scope): { client: Client, who: Who } {
    if (scope.kind === 'service') return { client: this.service(false), who: 'service' }
    const token = scope.accessToken
    if (typeof token !== 'string' || token === '') {
      // Only the auth plugin makes user scopes for requests, and it always attaches the token.
      throw new Error('Supabase mode needs the caller\'s access token in the user scope')
    }
    const now = this.#o.now()
    const hit = this.#clients.get(token)
    if (hit && hit.expMs > now) {
      this.#clients.delete(token) // LRU: to the young end
      this.#clients.set(token, hit)
      return { client: hit.client, who: 'user' }
    }
    if (hit) this.#clients.delete(token)
    const client = this.#make(this.#o.anonKey, token)
    if (this.#o.cacheSize > 0) {
      const exp = typeof scope.claims.exp === 'number' ? scope.claims.exp * 1000 : now + 60_000
      while (this.#clients.size >= this.#o.cacheSize) {
        const oldest = this.#clients.keys().next()
        if (oldest.done === true) break
        this.#clients.delete(oldest.value)
      }
      this.#clients.set(token, { client, expMs: exp })
    }
    return { client, who: 'user' }
  }

  clear (): void {
    this.#clients.clear()
    this.#service = null
    this.#anon = null
  }
}

/** Awaits one PostgREST call; a failure becomes a problem (or a SupabaseError). */
export async function answerOf<T> (who: Who, fn: () => PromiseLike<PostgrestAnswer<T>>, opts: { noRowsIsNull?: boolean } = {}): Promise<T | null> {
  let answer: PostgrestAnswer<T>
  try {
    answer = await fn()
  } catch (err) {
    // supabase-js answers failures as values; a throw is a network-level surprise
    throw supabaseUnreachable(err)
  }
  // `.single()`: PostgREST answers 406 PGRST116 when no row matched, which is "not there" (null)
  if (opts.noRowsIsNull === true && answer.error?.code === 'PGRST116' && /\b0 rows\b/.test(answer.error.details ?? '')) return null
  if (answer.error) throw supabaseProblem({ error: answer.error, status: answer.status }, who)
  return answer.data
}
