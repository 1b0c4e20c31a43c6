// The Store over a Supabase project through supabase-js: for teams with the project's URL and API
// keys but no database password.
//
// WHO ASKS. A user's work goes through a client made for that request's access token
// (`Authorization: Bearer <the caller's token>`, `apikey: <anon key>`), so Supabase's own RLS
// decides what exists, exactly as for the user's own supabase-js calls. Clients are cached by the
// exact token string (bounded, and never past the token's `exp`): two requests share a client only
// when they carry the same token, so a request can never use another user's credential.
//
// WHO WRITES. A user's token may write only the fields the user authors (the trust model,
// migrations/20250113000000): everything the service records — deploy outcomes, definitions and
// versions, sync results, idempotency records, lease locks — goes through the service-role client,
// to SQL functions only service_role may execute, with the user they act for as p_user_id (the id
// the service verified from the user's token). A user's delete of their own row keeps their token.
// Without SUPABASE_SERVICE_ROLE_KEY, user reads work and everything that records answers 503.
//
// WRITES that must be atomic are the SQL functions of supabase/migrations, called with `rpc` (the
// Postgres store calls the same functions with a plain select). Reads are PostgREST table reads.
//
// LOCKS. PostgREST has no session, so advisory locks are out of reach: a lock is a lease row
// (try_acquire_lock / renew_lock / release_lock), renewed every third of its TTL while held and
// released when done; a holder that died loses it when the lease runs out.
//
// ERRORS: network failures, HTTP statuses and PostgREST's error JSON map to the contract's
// problems (errors.ts: supabaseProblem). No key or token is ever logged or put into an error.
import { randomUUID } from 'node:crypto'
import { createClient } from '@supabase/supabase-js'
import type { SupabaseClient } from '@supabase/supabase-js'
import type { PoolStats } from '../db/database.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { AppError } from '../errors.ts'
import { sleep } from '../lib/backoff.ts'
import type { PurgeCounts } from './cleanup-store.ts'
import { SCHEMA_MISSING_MESSAGE, SupabaseError, supabaseProblem } from './errors.ts'
import { createOutcomeFromJson, withUtcTimestamps, workflowRowFromJson } from './rows.ts'
import { serviceOnly } from './scope.ts'
import { tailItems } from './live-tail-store.ts'
import type { LiveTailState, LiveTailWrite, LiveTailWriteResult, OpenExecution } from './live-tail-store.ts'
import type { Scope } from './scope.ts'
import { LOCK_BUSY_MESSAGE, leaseKey } from './store.ts'
import type {
  CreateOutcome, ExecutionListQuery, IdempotencyClaim, LockOptions, LockResult, LockSpec, NewWorkflowInput, Store,
  SyncLogListQuery, WorkflowListQuery
} from './store.ts'
import { executionStatsRow, statsArgs } from './stats-store.ts'
import type { ExecutionStatsQuery, ExecutionStatsRow } from './stats-store.ts'
import { executionItem } from './sync-store.ts'
import type { ExecutionInput, ExecutionRow, IngestJob, IngestOptions, IngestResult, ScanJob, SyncLogInput, SyncLogRow, SyncStatsRow, SyncTarget } from './sync-store.ts'
import { deployOutcomeJson, SUMMARY_COLUMNS, WORKFLOW_COLUMNS, workflowChangesJson } from './workflow-store.ts'
import type { DeployOutcome, IdempotencyRecord, ListedWorkflowRow, WorkflowChanges, WorkflowRow } from './workflow-store.ts'

export interface SupabaseStoreOptions {
  url: string
  anonKey: string
  /** Without it the service scope (cron routes) answers 503. */
  serviceRoleKey?: string | undefined
  /** fetch for every client (tests). Default: the global fetch. */
  fetch?: typeof fetch
  /** Per-request timeout of PostgREST calls, ms. Default 15 000. */
  timeoutMs?: number
  /** supabase-js retries of idempotent reads on network errors / 503 / 520. Default true. */
  retry?: boolean
  /** Most cached per-token clients. Default 500. */
  clientCacheSize?: number
  /** Lease locks: TTL (renewed every third of it) and the wait between tries. */
  lease?: { ttlSeconds?: number, pollMinMs?: number, pollMaxMs?: number }
  logger?: { warn(obj: object, msg?: string): void }
  now?: () => number
}

type Client = SupabaseClient
type Who = 'user' | 'service' | 'anon'

interface PostgrestAnswer<T> {
  data: T | null
  error: { code?: string, message?: string, details?: string | null, hint?: string | null } | null
  status: number
}

/** The 503 a user's write or sync answers in Supabase mode without the service-role key. */
export const SERVICE_KEY_NEEDED_FOR_USER_WRITES = 'Supabase mode records deploys, sync results, idempotency records and locks with the service-role key, and SUPABASE_SERVICE_ROLE_KEY is not set: reads work, writes and syncs need it'

const CLIENT_AUTH = { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } as const
const SELECT_WORKFLOW = `${WORKFLOW_COLUMNS}, deploy_attempts`
const SELECT_SUMMARY = `${SUMMARY_COLUMNS}, deploy_attempts`
const EXECUTION_COLUMNS = 'id, workflow_id, n8n_execution_id, status, mode, finished, started_at, stopped_at, created_at, updated_at, seq:n8n_execution_seq::text'
const SYNC_LOG_COLUMNS = 'id, user_id, sync_type, status, duration_ms, workflows_synced, workflows_failed, executions_ingested, error, details, created_at, created_key:created_at::text'
/** Supabase projects cap answers at 1000 rows by default (max_rows): bigger reads go in pages. */
const PAGE_ROWS = 1000

/** A value inside a PostgREST logic tree (or=(...)): double-quoted, as its docs require for `.:,()`. */
function quoted (v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export class SupabaseStore implements Store {
  readonly kind = 'supabase' as const
  readonly url: string
  readonly #anonKey: string
  readonly #serviceKey: string | undefined
  readonly #fetch: typeof fetch | undefined
  readonly #timeoutMs: number
  readonly #retry: boolean
  readonly #cacheSize: number
  readonly #ttlSeconds: number
  readonly #pollMinMs: number
  readonly #pollMaxMs: number
  readonly #log: SupabaseStoreOptions['logger']
  readonly #now: () => number
  readonly #instance = randomUUID()
  readonly #clients = new Map<string, { client: Client, expMs: number }>()
  #service: Client | null = null
  #anon: Client | null = null
  /** Clients made so far (tests: the cache works). */
  clientsCreated = 0

  constructor (opts: SupabaseStoreOptions) {
    this.url = opts.url.replace(/\/+$/, '')
    this.#anonKey = opts.anonKey
    this.#serviceKey = opts.serviceRoleKey || undefined
    this.#fetch = opts.fetch
    this.#timeoutMs = opts.timeoutMs ?? 15_000
    this.#retry = opts.retry ?? true
    this.#cacheSize = Math.max(0, opts.clientCacheSize ?? 500)
    this.#ttlSeconds = Math.max(1, Math.min(3600, Math.round(opts.lease?.ttlSeconds ?? 30)))
    this.#pollMinMs = Math.max(1, opts.lease?.pollMinMs ?? 50)
    this.#pollMaxMs = Math.max(this.#pollMinMs, opts.lease?.pollMaxMs ?? 1000)
    this.#log = opts.logger
    this.#now = opts.now ?? Date.now
  }

  /** Whether the service-role key is configured (cron routes work). */
  get hasServiceRole (): boolean {
    return this.#serviceKey !== undefined
  }

  // ---- clients ---------------------------------------------------------------------------------

  #make (key: string, bearer?: string): Client {
    this.clientsCreated++
    return createClient(this.url, key, {
      auth: CLIENT_AUTH,
      db: { timeout: this.#timeoutMs, retry: this.#retry },
      global: {
        ...(bearer !== undefined ? { headers: { Authorization: `Bearer ${bearer}` } } : {}),
        ...(this.#fetch ? { fetch: this.#fetch } : {})
      }
    })
  }

  /** The service-role client; 503 (with what to set) when the key is not configured. */
  #serviceClient (forUser: boolean): Client {
    if (this.#serviceKey === undefined) {
      throw new AppError('database_unavailable', forUser ? SERVICE_KEY_NEEDED_FOR_USER_WRITES : 'Cron work in Supabase mode needs SUPABASE_SERVICE_ROLE_KEY, which is not set', { status: 503 })
    }
    this.#service ??= this.#make(this.#serviceKey)
    return this.#service
  }

  /** The client a scope's reads go through: the caller's own token, or the service role. */
  clientFor (scope: Scope): { client: Client, who: Who } {
    if (scope.kind === 'service') {
      return { client: this.#serviceClient(false), who: 'service' }
    }
    const token = scope.accessToken
    if (typeof token !== 'string' || token === '') {
      // Only the auth plugin makes user scopes for requests, and it always attaches the token.
      throw new Error('Supabase mode needs the caller\'s access token in the user scope')
    }
    const now = this.#now()
    const hit = this.#clients.get(token)
    if (hit && hit.expMs > now) {
      this.#clients.delete(token) // LRU: to the young end
      this.#clients.set(token, hit)
      return { client: hit.client, who: 'user' }
    }
    if (hit) this.#clients.delete(token)
    const client = this.#make(this.#anonKey, token)
    if (this.#cacheSize > 0) {
      const exp = typeof scope.claims.exp === 'number' ? scope.claims.exp * 1000 : now + 60_000
      while (this.#clients.size >= this.#cacheSize) {
        const oldest = this.#clients.keys().next()
        if (oldest.done === true) break
        this.#clients.delete(oldest.value)
      }
      this.#clients.set(token, { client, expMs: exp })
    }
    return { client, who: 'user' }
  }

  #anonClient (): Client {
    this.#anon ??= this.#make(this.#anonKey)
    return this.#anon
  }

  /** Runs one PostgREST call as the scope; a failure becomes a problem (or a SupabaseError). */
  async #call<T> (scope: Scope, fn: (c: Client) => PromiseLike<PostgrestAnswer<T>>): Promise<T | null> {
    const { client, who } = this.clientFor(scope)
    return await this.#run(who, () => fn(client))
  }

  async #run<T> (who: Who, fn: () => PromiseLike<PostgrestAnswer<T>>): Promise<T | null> {
    let answer: PostgrestAnswer<T>
    try {
      answer = await fn()
    } catch (err) {
      // supabase-js answers failures as values; a throw is a network-level surprise
      throw new AppError('database_unavailable', 'Supabase is unreachable; try again shortly', { headers: { 'retry-after': '2' }, cause: err })
    }
    if (answer.error) throw supabaseProblem({ error: answer.error, status: answer.status }, who)
    return answer.data
  }

  /**
   * One row or none: `Accept: application/vnd.pgrst.object+json` (supabase-js `.single()`); PostgREST
   * answers 406 PGRST116 when no row matched, which here is "not there" (null).
   */
  async #single<T> (scope: Scope, fn: (c: Client) => PromiseLike<PostgrestAnswer<T>>): Promise<T | null> {
    const { client, who } = this.clientFor(scope)
    let answer: PostgrestAnswer<T>
    try {
      answer = await fn(client)
    } catch (err) {
      throw new AppError('database_unavailable', 'Supabase is unreachable; try again shortly', { headers: { 'retry-after': '2' }, cause: err })
    }
    if (answer.error?.code === 'PGRST116' && /\b0 rows\b/.test(answer.error.details ?? '')) return null
    if (answer.error) throw supabaseProblem({ error: answer.error, status: answer.status }, who)
    return answer.data
  }

  #rpc<T> (scope: Scope, fn: string, args: Record<string, unknown>): Promise<T | null> {
    return this.#call<T>(scope, (c) => c.rpc(fn, args) as unknown as PromiseLike<PostgrestAnswer<T>>)
  }

  /** A service write (service-role key), on behalf of `scope` (a user, or the service itself). */
  async #record<T> (scope: Scope, fn: string, args: Record<string, unknown>): Promise<T | null> {
    const client = this.#serviceClient(scope.kind === 'user')
    return await this.#run<T>('service', () => client.rpc(fn, args) as unknown as PromiseLike<PostgrestAnswer<T>>)
  }

  // ---- operations ------------------------------------------------------------------------------

  async ping (timeoutMs = 2000): Promise<boolean> {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      await this.#run('anon', () => this.#anonClient().rpc('workflow_sync_schema_version').abortSignal(signal) as unknown as PromiseLike<PostgrestAnswer<string>>)
      return true
    } catch {
      return false
    }
  }

  /**
   * The boot check: the project answers and its schema includes `expectedVersion` (the newest file
   * of supabase/migrations). Throws an Error whose message tells the operator what to do.
   */
  async checkSchema (expectedVersion: string): Promise<string> {
    const answer = await this.#anonClient().rpc('workflow_sync_schema_version') as unknown as PostgrestAnswer<string>
    if (answer.error) {
      const p = supabaseProblem({ error: answer.error, status: answer.status }, 'anon')
      if (p instanceof AppError && p.message === SCHEMA_MISSING_MESSAGE) {
        throw new Error(`Supabase mode: the project at ${this.url} has no workflow-sync schema. This service cannot apply migrations without a database password: run \`supabase link --project-ref <ref>\` then \`supabase db push\` (files in supabase/migrations), then start again.`)
      }
      if (answer.status === 0) {
        throw new Error(`Supabase mode: the project at ${this.url} is unreachable (${answer.error.message ?? 'network error'}); check SUPABASE_URL and the network.`)
      }
      if (answer.status === 401 || answer.status === 403) {
        throw new Error(`Supabase mode: the project at ${this.url} refused SUPABASE_ANON_KEY (HTTP ${answer.status}); check the key.`)
      }
      throw new Error(`Supabase mode: the schema check failed (HTTP ${answer.status}${answer.error.code ? `, ${answer.error.code}` : ''}: ${answer.error.message ?? ''}).`)
    }
    const version = typeof answer.data === 'string' ? answer.data : ''
    if (version < expectedVersion) {
      throw new Error(`Supabase mode: the project's workflow-sync schema is at ${version || 'an unknown version'} but this service needs ${expectedVersion}: run \`supabase db push\` (files in supabase/migrations), then start again.`)
    }
    return version
  }

  poolStats (): PoolStats | null {
    return null
  }

  async close (): Promise<void> {
    this.#clients.clear()
    this.#service = null
    this.#anon = null
  }

  // ---- workflows -------------------------------------------------------------------------------

  async listWorkflows (scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]> {
    const userId = userIdOf(scope)
    const rows = await this.#call<Array<Record<string, unknown>>>(scope, (c) => {
      const columns: string = q.definition === false ? SELECT_SUMMARY : SELECT_WORKFLOW
      let b = c.from('mvp_workflows').select(columns).eq('user_id', userId)
      if (q.after) {
        const ts = quoted(q.after.createdAt)
        b = b.or(`created_at.lt.${ts},and(created_at.eq.${ts},id.lt.${q.after.id})`)
      }
      if (q.status) b = b.eq('status', q.status)
      if (q.active !== undefined) b = b.eq('active', q.active)
      return b.order('created_at', { ascending: false }).order('id', { ascending: false }).limit(q.limit) as unknown as PromiseLike<PostgrestAnswer<Array<Record<string, unknown>>>>
    })
    return (rows ?? []).map((r): ListedWorkflowRow => {
      const row = workflowRowFromJson(r)
      if (q.definition !== false) return { ...row, cursor_ts: row.created_at }
      const { nodes: _n, connections: _c, settings: _s, ...summary } = row
      return { ...summary, cursor_ts: row.created_at }
    })
  }

  async getWorkflow (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    const row = await this.#single<Record<string, unknown>>(scope, (c) => {
      let b = c.from('mvp_workflows').select(SELECT_WORKFLOW).eq('id', id)
      if (scope.kind === 'user') b = b.eq('user_id', scope.userId)
      return b.single() as unknown as PromiseLike<PostgrestAnswer<Record<string, unknown>>>
    })
    return row ? workflowRowFromJson(row) : undefined
  }

  async createWorkflow (scope: Scope, input: NewWorkflowInput, idempotency?: IdempotencyClaim): Promise<CreateOutcome> {
    const userId = userIdOf(scope)
    const args: Record<string, unknown> = {
      p_user_id: userId,
      p_name: input.name,
      p_description: input.description,
      p_nodes: input.nodes,
      p_connections: input.connections,
      p_settings: input.settings
    }
    if (idempotency) {
      args.p_idempotency_key = idempotency.key
      args.p_request_hash = idempotency.requestHash
      args.p_ttl_hours = idempotency.ttlHours
    }
    const r = await this.#record<Record<string, unknown>>(scope, 'create_workflow', args)
    if (!r) throw new Error('create_workflow returned nothing')
    return createOutcomeFromJson(r)
  }

  async getIdempotencyRecord (scope: Scope, key: string): Promise<IdempotencyRecord | undefined> {
    const userId = userIdOf(scope)
    const r = await this.#single<{ request_hash: string, status_code: number | null, response: unknown, workflow_id: string | null, expires_at: string }>(scope, (c) =>
      c.from('idempotency_keys').select('request_hash, status_code, response, workflow_id, expires_at')
        .eq('user_id', userId).eq('key', key).single() as unknown as PromiseLike<PostgrestAnswer<{ request_hash: string, status_code: number | null, response: unknown, workflow_id: string | null, expires_at: string }>>)
    if (!r) return undefined
    return {
      request_hash: r.request_hash,
      status_code: r.status_code,
      response: r.response,
      workflow_id: r.workflow_id,
      expired: Date.parse(r.expires_at) <= this.#now()
    }
  }

  async completeIdempotencyKey (scope: Scope, key: string, statusCode: number, response: Workflow): Promise<void> {
    const userId = userIdOf(scope)
    await this.#record(scope, 'complete_idempotency_key', { p_user_id: userId, p_idempotency_key: key, p_status_code: statusCode, p_response: response })
  }

  async beginDeploy (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    const r = await this.#record<Record<string, unknown>>(scope, 'begin_deploy', { p_workflow_id: id, p_user_id: actingFor(scope) })
    return r ? workflowRowFromJson(r) : undefined
  }

  async recordDeployOutcome (scope: Scope, id: string, outcome: DeployOutcome): Promise<WorkflowRow | undefined> {
    const r = await this.#record<Record<string, unknown>>(scope, 'record_deploy_outcome', { p_workflow_id: id, p_outcome: deployOutcomeJson(outcome), p_user_id: actingFor(scope) })
    return r ? workflowRowFromJson(r) : undefined
  }

  async updateWorkflowDefinition (scope: Scope, id: string, changes: WorkflowChanges, expectedVersion?: number): Promise<WorkflowRow | undefined> {
    const userId = userIdOf(scope)
    const r = await this.#record<Record<string, unknown>>(scope, 'update_workflow_definition', {
      p_workflow_id: id,
      p_user_id: userId,
      p_changes: workflowChangesJson(changes),
      p_expected_version: expectedVersion ?? null
    })
    return r ? workflowRowFromJson(r) : undefined
  }

  async setWorkflowActive (scope: Scope, id: string, active: boolean): Promise<WorkflowRow | undefined> {
    const userId = userIdOf(scope)
    const r = await this.#record<Record<string, unknown>>(scope, 'set_workflow_active', { p_workflow_id: id, p_active: active, p_user_id: userId })
    return r ? workflowRowFromJson(r) : undefined
  }

  async deleteWorkflow (scope: Scope, id: string): Promise<boolean> {
    const userId = userIdOf(scope)
    const rows = await this.#call<Array<{ id: string }>>(scope, (c) =>
      c.from('mvp_workflows').delete().eq('id', id).eq('user_id', userId).select('id') as unknown as PromiseLike<PostgrestAnswer<Array<{ id: string }>>>)
    return (rows ?? []).length > 0
  }

  async withLock<T> (scope: Scope, lock: LockSpec, fn: () => Promise<T>, opts: LockOptions = {}): Promise<LockResult<T>> {
    // The leases are the service's rows now (the trust model): the prefix rule RLS kept for user
    // tokens is kept here — a user's work takes only that user's locks.
    if (scope.kind === 'user' && 'ownerId' in lock && lock.ownerId !== scope.userId) {
      throw new AppError('forbidden', 'A lock of another user\'s resource')
    }
    if (scope.kind === 'user' && !('ownerId' in lock)) throw new AppError('forbidden', 'This lock is the service\'s own')
    const key = leaseKey(lock)
    const holder = `${this.#instance}:${randomUUID()}`
    const ttl = this.#ttlSeconds
    const deadline = this.#now() + (opts.timeoutMs ?? 120_000)
    let delay = this.#pollMinMs
    for (;;) {
      const got = await this.#record<boolean>(scope, 'try_acquire_lock', { p_key: key, p_holder: holder, p_ttl_seconds: ttl })
      if (got === true) break
      if (opts.wait === false) return { acquired: false }
      const left = deadline - this.#now()
      if (left <= 0) throw new AppError('conflict', LOCK_BUSY_MESSAGE, { headers: { 'retry-after': '5' } })
      await sleep(Math.min(delay, left))
      delay = Math.min(delay * 2, this.#pollMaxMs)
    }
    // Renewed while held: a holder that takes longer than the TTL keeps its lease.
    let renewing: Promise<void> | null = null
    const timer = setInterval(() => {
      if (renewing) return
      renewing = this.#record<boolean>(scope, 'renew_lock', { p_key: key, p_holder: holder, p_ttl_seconds: ttl }).then((kept) => {
        if (kept !== true) this.#log?.warn({ lock: lock.name }, 'lease lock lost while held (it expired and was taken over)')
      }, (err: unknown) => {
        this.#log?.warn({ lock: lock.name, code: err instanceof AppError ? err.code : 'error' }, 'lease lock renewal failed')
      }).finally(() => { renewing = null })
    }, Math.max(50, Math.floor(ttl * 1000 / 3)))
    timer.unref()
    try {
      return { acquired: true, value: await fn() }
    } finally {
      clearInterval(timer)
      await (renewing as Promise<void> | null)?.catch(() => {})
      try {
        await this.#record(scope, 'release_lock', { p_key: key, p_holder: holder })
      } catch (err) {
        // the lease runs out by itself
        this.#log?.warn({ lock: lock.name, code: err instanceof AppError ? err.code : 'error' }, 'lease lock release failed; it expires by itself')
      }
    }
  }

  // ---- sync ------------------------------------------------------------------------------------

  async listSyncTargets (scope: Scope, filter: { workflowIds?: string[] | null } = {}): Promise<SyncTarget[]> {
    const ids = filter.workflowIds ?? null
    if (ids !== null && ids.length === 0) return []
    // An rpc (list_sync_targets): the effective stop point is a join, and the ids travel in the body.
    const out: SyncTarget[] = []
    let after: SyncTarget | undefined
    for (;;) {
      const page: SyncTarget[] = await this.#rpc<SyncTarget[]>(scope, 'list_sync_targets', {
        p_workflow_ids: ids,
        p_after_user: after?.user_id ?? null,
        p_after_id: after?.id ?? null,
        p_limit: PAGE_ROWS
      }) ?? []
      out.push(...page)
      after = page.at(-1)
      if (page.length < PAGE_ROWS || !after) return out
    }
  }

  async ingestExecutionsBatch (scope: Scope, jobs: IngestJob[], syncedAt: Date): Promise<IngestResult[]> {
    const r = await this.#record<IngestResult[]>(scope, 'ingest_user_executions_batch', {
      p_user_id: actingFor(scope),
      p_batches: jobs.map((j) => ({ workflow_id: j.workflowId, executions: j.executions.map(executionItem), options: j.options ?? {} })),
      p_synced_at: syncedAt.toISOString()
    })
    if (!Array.isArray(r) || r.length !== jobs.length) throw new Error('ingest_executions_batch returned an unexpected answer')
    return r
  }

  async ingestScanBatch (scope: Scope, jobs: ScanJob[], syncedAt: Date, options: { ceiling: string, started_before?: string }): Promise<IngestResult[]> {
    serviceOnly(scope, 'The instance scan')
    const r = await this.#record<IngestResult[]>(scope, 'ingest_scan_batch', {
      p_batch: jobs.map((j) => ({ workflow_id: j.workflowId, final: j.final, executions: j.items.map((i) => JSON.parse(i) as unknown) })),
      p_synced_at: syncedAt.toISOString(),
      p_options: options
    })
    if (!Array.isArray(r) || r.length !== jobs.length) throw new Error('ingest_scan_batch returned an unexpected answer')
    return r
  }

  async workflowsWithOpenRows (scope: Scope, workflowIds: string[]): Promise<string[]> {
    const out: string[] = []
    // at most PAGE_ROWS ids per call: the answer (one row per id at most) stays under max_rows
    for (let i = 0; i < workflowIds.length; i += PAGE_ROWS) {
      const ids = await this.#rpc<string[]>(scope, 'workflows_with_open_rows', { p_workflow_ids: workflowIds.slice(i, i + PAGE_ROWS) }) ?? []
      out.push(...ids)
    }
    return out
  }

  async raiseScanFloors (scope: Scope, workflowIds: string[], floor: string): Promise<number> {
    serviceOnly(scope, 'The instance scan')
    const n = await this.#record<number>(scope, 'raise_scan_floors', { p_workflow_ids: workflowIds, p_floor: floor })
    return Number(n ?? 0)
  }

  async ingestExecutions (scope: Scope, workflowId: string, executions: ExecutionInput[], syncedAt: Date, options: IngestOptions = {}): Promise<IngestResult> {
    const r = await this.#record<IngestResult>(scope, 'ingest_user_executions', {
      p_user_id: actingFor(scope),
      p_workflow_id: workflowId,
      p_executions: executions.map(executionItem),
      p_synced_at: syncedAt.toISOString(),
      p_options: options
    })
    if (!r) throw new Error('ingest_executions returned nothing')
    return r
  }

  async markWorkflowMissing (scope: Scope, workflowId: string, n8nWorkflowId: string, error: string, syncedAt: Date): Promise<boolean> {
    const r = await this.#record<boolean>(scope, 'mark_user_workflow_missing', {
      p_user_id: actingFor(scope),
      p_workflow_id: workflowId, p_n8n_workflow_id: n8nWorkflowId, p_error: error, p_synced_at: syncedAt.toISOString()
    })
    return r === true
  }

  async recordSyncLog (scope: Scope, log: SyncLogInput): Promise<string> {
    const id = await this.#record<string>(scope, 'record_sync_log', {
      p_sync_type: log.sync_type,
      p_status: log.status,
      p_duration_ms: Math.round(log.duration_ms),
      p_workflows_synced: log.workflows_synced,
      p_workflows_failed: log.workflows_failed,
      p_executions_ingested: log.executions_ingested,
      p_error: log.error,
      p_details: log.details,
      // a user's sync logs for that user, whatever the input says
      p_user_id: scope.kind === 'user' ? scope.userId : (log.user_id ?? null)
    })
    if (!id) throw new Error('record_sync_log returned nothing')
    return id
  }

  async listExecutionHistory (scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined> {
    const visible = await this.#call<Array<{ id: string }>>(scope, (c) =>
      c.from('mvp_workflows').select('id').eq('id', workflowId).limit(1) as unknown as PromiseLike<PostgrestAnswer<Array<{ id: string }>>>)
    if (!visible || visible.length === 0) return undefined
    const rows = await this.#call<Array<Record<string, unknown>>>(scope, (c) => {
      let b = c.from('workflow_executions').select(EXECUTION_COLUMNS).eq('workflow_id', workflowId)
      if (q.beforeSeq !== null) b = b.lt('n8n_execution_seq', q.beforeSeq)
      if (q.status !== null) b = b.eq('status', q.status)
      return b.order('n8n_execution_seq', { ascending: false, nullsFirst: false }).limit(q.limit) as unknown as PromiseLike<PostgrestAnswer<Array<Record<string, unknown>>>>
    })
    return (rows ?? []).map((r) => withUtcTimestamps(r, ['started_at', 'stopped_at', 'created_at', 'updated_at']) as unknown as ExecutionRow)
  }

  async listSyncLogs (scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]> {
    const rows = await this.#call<Array<Record<string, unknown>>>(scope, (c) => {
      let b = c.from('sync_logs').select(SYNC_LOG_COLUMNS)
      if (q.before) {
        const ts = quoted(q.before.created)
        b = b.or(`created_at.lt.${ts},and(created_at.eq.${ts},id.lt.${q.before.id})`)
      }
      return b.order('created_at', { ascending: false }).order('id', { ascending: false }).limit(q.limit) as unknown as PromiseLike<PostgrestAnswer<Array<Record<string, unknown>>>>
    })
    return (rows ?? []).map((r) => withUtcTimestamps(r, ['created_at']) as unknown as SyncLogRow)
  }

  async syncStats (scope: Scope, since: Date): Promise<SyncStatsRow[]> {
    return await this.#rpc<SyncStatsRow[]>(scope, 'sync_log_stats', { p_since: since.toISOString() }) ?? []
  }

  async executionStats (scope: Scope, q: ExecutionStatsQuery): Promise<ExecutionStatsRow[] | undefined> {
    if (q.workflowId !== null) {
      const id = q.workflowId
      const visible = await this.#call<Array<{ id: string }>>(scope, (c) =>
        c.from('mvp_workflows').select('id').eq('id', id).limit(1) as unknown as PromiseLike<PostgrestAnswer<Array<{ id: string }>>>)
      if (!visible || visible.length === 0) return undefined
    }
    const rows = await this.#rpc<Array<Record<string, unknown>>>(scope, 'workflow_execution_stats', statsArgs(q))
    return (rows ?? []).map(executionStatsRow)
  }

  // ---- cleanup ---------------------------------------------------------------------------------

  async purgeExpiredData (scope: Scope, syncLogDays: number, executionDays: number, dryRun: boolean): Promise<PurgeCounts> {
    const r = await this.#rpc<PurgeCounts>(scope, 'purge_expired_data', { p_sync_log_days: syncLogDays, p_execution_days: executionDays, p_dry_run: dryRun })
    if (!r) throw new Error('purge_expired_data returned nothing')
    return r
  }

  async ownedN8nWorkflows (scope: Scope, n8nIds: string[], rowIds: string[]): Promise<{ n8nIds: Set<string>, rowIds: Set<string> }> {
    const rows = await this.#rpc<Array<{ n8n_workflow_id: string | null, row_id: string | null }>>(scope, 'owned_n8n_workflows', { p_n8n_ids: n8nIds, p_row_ids: rowIds }) ?? []
    const owned = { n8nIds: new Set<string>(), rowIds: new Set<string>() }
    for (const r of rows) {
      if (r.n8n_workflow_id) owned.n8nIds.add(r.n8n_workflow_id)
      if (r.row_id) owned.rowIds.add(r.row_id)
    }
    return owned
  }

  async purgeEventLog (scope: Scope, olderThanHours: number, dryRun: boolean): Promise<number> {
    const n = await this.#rpc<number | string>(scope, 'purge_workflow_events', { p_older_than: `${Math.max(0, Math.trunc(olderThanHours))} hours`, p_dry_run: dryRun })
    return Number(n ?? 0)
  }

  // ---- live tail -------------------------------------------------------------------------------

  async liveTailClaim (scope: Scope, holder: string): Promise<LiveTailState> {
    const r = await this.#rpc<LiveTailState>(scope, 'live_tail_claim', { p_holder: holder })
    if (r === null) throw new Error('live_tail_claim returned nothing')
    return r
  }

  async liveTailIngest (scope: Scope, epoch: string, write: LiveTailWrite, syncedAt: Date): Promise<LiveTailWriteResult> {
    const r = await this.#rpc<LiveTailWriteResult>(scope, 'live_tail_ingest', {
      p_epoch: epoch,
      p_items: tailItems(write.items),
      p_vanished: write.vanished,
      p_synced_at: syncedAt.toISOString(),
      p_state: write.state,
      p_identities: write.identities ?? {}
    })
    if (r === null) throw new Error('live_tail_ingest returned nothing')
    return r
  }

  async liveTailOpenExecutions (scope: Scope, limit: number): Promise<OpenExecution[]> {
    return await this.#rpc<OpenExecution[]>(scope, 'live_tail_open_executions', { p_limit: limit }) ?? []
  }
}

/** The user a service write acts for; null for the service's own (cron) work. */
function actingFor (scope: Scope): string | null {
  return scope.kind === 'user' ? scope.userId : null
}

function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new AppError('forbidden', 'This operation needs a signed-in user')
  return scope.userId
}

export { SupabaseError }
