// The Store over a Supabase project through supabase-js: for teams with the project's URL and API
// keys but no database password.
//
// WHO ASKS, WHO WRITES. A user's reads go through a client made for that request's access token,
// so Supabase's own RLS decides what exists (supabase-clients.ts). A user's token may write only the
// fields the user authors (the trust model, migrations/20250113000000): everything the service
// records — deploy outcomes, definitions and versions, sync results, idempotency records, lease
// locks — goes through the service-role client, to SQL functions only service_role may execute,
// with the user they act for as p_user_id (the id the service verified from the user's token). A
// user's delete of their own row keeps their token. Without SUPABASE_SERVICE_ROLE_KEY, user reads
// work and everything that records answers 503.
//
// WRITES that must be atomic are the SQL functions of the operation table (operations.ts), called
// here with `rpc` (the Postgres store calls the same entries with a plain select). Reads are
// PostgREST table reads. Times that decide (idempotency expiry, leases) are the database's clock.
//
// LOCKS. PostgREST has no session, so advisory locks are out of reach: a lock is a lease row
// (try_acquire_lock / renew_lock / release_lock), renewed every third of its TTL while held and
// released when done; a holder that died loses it when the lease runs out.
//
// ERRORS: network failures, HTTP statuses and PostgREST's error JSON map to the contract's
// problems (db/errors.ts: supabaseProblem).
import { randomUUID } from 'node:crypto'
import type { PoolStats } from '../db/database.ts'
import { lockBusy, SCHEMA_MISSING_MESSAGE, SupabaseError, supabaseProblem } from '../db/errors.ts'
import { AppError } from '../errors.ts'
import { sleep } from '../lib/backoff.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { OperationStore } from './operation-store.ts'
import { userIdOf } from './operations.ts'
import type { Arg, Args, Operation } from './operations.ts'
import { SUMMARY_FIELDS, WORKFLOW_FIELDS, withUtcTimestamps, workflowRowFromJson } from './rows.ts'
import type { EventLogPosition, EventLogRow, ExecutionRow, IdempotencyRecord, ListedWorkflowRow, SyncLogRow, WorkflowRow } from './rows.ts'
import type { Scope } from './scope.ts'
import { leaseKey } from './store.ts'
import type { ExecutionListQuery, LockOptions, LockResult, LockSpec, SyncLogListQuery, WorkflowListQuery } from './store.ts'
import { answerOf, SupabaseClients } from './supabase-clients.ts'
import type { Client, PostgrestAnswer } from './supabase-clients.ts'

export { SERVICE_KEY_NEEDED_FOR_USER_WRITES } from './supabase-clients.ts'

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

const SELECT_WORKFLOW = `${WORKFLOW_FIELDS.join(', ')}, deploy_attempts`
const SELECT_SUMMARY = `${SUMMARY_FIELDS.join(', ')}, deploy_attempts`
const EXECUTION_COLUMNS = 'id, workflow_id, n8n_execution_id, status, mode, finished, started_at, stopped_at, created_at, updated_at, seq:n8n_execution_seq::text'
const SYNC_LOG_COLUMNS = 'id, user_id, sync_type, status, duration_ms, workflows_synced, workflows_failed, executions_ingested, error, details, created_at, created_key:created_at::text'
/** Supabase projects cap answers at 1000 rows by default (max_rows): bigger reads go in pages. */
const PAGE_ROWS = 1000
/** Ids per `in.(…)` filter: they travel in the URL. */
const IDS_PER_URL = 100

/** A value inside a PostgREST logic tree (or=(...)): double-quoted, as its docs require for `.:,()`. */
function quoted (v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export class SupabaseStore extends OperationStore {
  readonly kind = 'supabase' as const
  readonly url: string
  protected override readonly maxIdsPerCall = PAGE_ROWS
  readonly #clients: SupabaseClients
  readonly #ttlSeconds: number
  readonly #pollMinMs: number
  readonly #pollMaxMs: number
  readonly #log: SupabaseStoreOptions['logger']
  readonly #now: () => number
  readonly #instance = randomUUID()

  constructor (opts: SupabaseStoreOptions) {
    super()
    this.url = opts.url.replace(/\/+$/, '')
    this.#now = opts.now ?? Date.now
    this.#clients = new SupabaseClients({
      url: this.url,
      anonKey: opts.anonKey,
      serviceRoleKey: opts.serviceRoleKey || undefined,
      fetch: opts.fetch,
      timeoutMs: opts.timeoutMs ?? 15_000,
      retry: opts.retry ?? true,
      cacheSize: Math.max(0, opts.clientCacheSize ?? 500),
      now: this.#now
    })
    this.#ttlSeconds = Math.max(1, Math.min(3600, Math.round(opts.lease?.ttlSeconds ?? 30)))
    this.#pollMinMs = Math.max(1, opts.lease?.pollMinMs ?? 50)
    this.#pollMaxMs = Math.max(this.#pollMinMs, opts.lease?.pollMaxMs ?? 1000)
    this.#log = opts.logger
  }

  /** Whether the service-role key is configured (cron routes work). */
  get hasServiceRole (): boolean {
    return this.#clients.hasServiceRole
  }

  /** Clients made so far (tests: the cache works). */
  get clientsCreated (): number {
    return this.#clients.created
  }

  /** The client a scope's reads go through: the caller's own token, or the service role. */
  clientFor (scope: Scope): { client: Client, who: 'user' | 'service' | 'anon' } {
    return this.#clients.for(scope)
  }

  /** Runs one PostgREST call as the scope. */
  #call<T> (scope: Scope, fn: (c: Client) => PromiseLike<PostgrestAnswer<T>>, single = false): Promise<T | null> {
    const { client, who } = this.#clients.for(scope)
    return answerOf(who, () => fn(client), { noRowsIsNull: single })
  }

  /** Rows of a table read (the builders' answer type, seen as rows). */
  #rows (scope: Scope, fn: (c: Client) => unknown): Promise<Array<Record<string, unknown>> | null> {
    return this.#call(scope, fn as (c: Client) => PromiseLike<PostgrestAnswer<Array<Record<string, unknown>>>>)
  }

  protected async invoke (scope: Scope, op: Operation<never, unknown>, args: Args): Promise<unknown> {
    const body: Record<string, unknown> = {}
    for (const [name, arg] of Object.entries(args)) body[name] = restValue(arg)
    if (op.role !== 'service') return await this.#call(scope, (c) => c.rpc(op.fn, body) as unknown as PromiseLike<PostgrestAnswer<unknown>>)
    // what the service records: the service-role key, on behalf of `scope` (a user, or the service)
    const client = this.#clients.service(scope.kind === 'user')
    return await answerOf('service', () => client.rpc(op.fn, body) as unknown as PromiseLike<PostgrestAnswer<unknown>>)
  }

  async ping (timeoutMs = 2000): Promise<boolean> {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      await answerOf('anon', () => this.#clients.anon().rpc('workflow_sync_schema_version').abortSignal(signal) as unknown as PromiseLike<PostgrestAnswer<string>>)
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
    const answer = await this.#clients.anon().rpc('workflow_sync_schema_version') as unknown as PostgrestAnswer<string>
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
  }

  // ---- table reads -----------------------------------------------------------------------------

  async listWorkflows (scope: Scope, q: WorkflowListQuery): Promise<ListedWorkflowRow[]> {
    const userId = userIdOf(scope)
    const rows = await this.#rows(scope, (c) => {
      const columns: string = q.definition === false ? SELECT_SUMMARY : SELECT_WORKFLOW
      let b = c.from('mvp_workflows').select(columns).eq('user_id', userId)
      if (q.after) {
        const ts = quoted(q.after.createdAt)
        b = b.or(`created_at.lt.${ts},and(created_at.eq.${ts},id.lt.${q.after.id})`)
      }
      if (q.status) b = b.eq('status', q.status)
      if (q.active !== undefined) b = b.eq('active', q.active)
      return b.order('created_at', { ascending: false }).order('id', { ascending: false }).limit(q.limit)
    })
    return (rows ?? []).map((r): ListedWorkflowRow => {
      const row = workflowRowFromJson(r)
      if (q.definition !== false) return { ...row, cursor_ts: row.created_at }
      const { nodes: _n, connections: _c, settings: _s, ...summary } = row
      return { ...summary, cursor_ts: row.created_at }
    })
  }

  async getWorkflow (scope: Scope, id: string): Promise<WorkflowRow | undefined> {
    const row = await this.#call<Record<string, unknown>>(scope, (c) => {
      let b = c.from('mvp_workflows').select(SELECT_WORKFLOW).eq('id', id)
      if (scope.kind === 'user') b = b.eq('user_id', scope.userId)
      return b.single() as unknown as PromiseLike<PostgrestAnswer<Record<string, unknown>>>
    }, true)
    return row ? workflowRowFromJson(row) : undefined
  }

  /**
   * The expiry is the database's clock, as in the Postgres store: the row is read with
   * `expires_at > now` (Postgres reads 'now' as its current time), and only when that finds
   * nothing is it read again to tell an expired key from none.
   */
  async getIdempotencyRecord (scope: Scope, key: string): Promise<IdempotencyRecord | undefined> {
    const userId = userIdOf(scope)
    const read = (live: boolean): Promise<Record<string, unknown> | null> => this.#call<Record<string, unknown>>(scope, (c) => {
      let b = c.from('idempotency_keys').select('request_hash, status_code, response, workflow_id').eq('user_id', userId).eq('key', key)
      if (live) b = b.gt('expires_at', 'now')
      return b.single() as unknown as PromiseLike<PostgrestAnswer<Record<string, unknown>>>
    }, true)
    let expired = false
    let r = await read(true)
    if (!r) {
      r = await read(false)
      expired = true
    }
    if (!r) return undefined
    return {
      request_hash: r.request_hash as string,
      status_code: r.status_code as number | null,
      response: r.response,
      workflow_id: r.workflow_id as string | null,
      expired
    }
  }

  async deleteWorkflow (scope: Scope, id: string): Promise<boolean> {
    const userId = userIdOf(scope)
    const rows = await this.#rows(scope, (c) => c.from('mvp_workflows').delete().eq('id', id).eq('user_id', userId).select('id'))
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
      if (await this.run('tryAcquireLock', scope, { key, holder, ttlSeconds: ttl })) break
      if (opts.wait === false) return { acquired: false }
      const left = deadline - this.#now()
      if (left <= 0) throw lockBusy()
      await sleep(Math.min(delay, left))
      delay = Math.min(delay * 2, this.#pollMaxMs)
    }
    // Renewed while held: a holder that takes longer than the TTL keeps its lease.
    let renewing: Promise<void> | null = null
    const timer = setInterval(() => {
      if (renewing) return
      renewing = this.run('renewLock', scope, { key, holder, ttlSeconds: ttl }).then((kept) => {
        if (!kept) this.#log?.warn({ lock: lock.name }, 'lease lock lost while held (it expired and was taken over)')
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
        await this.run('releaseLock', scope, { key, holder })
      } catch (err) {
        // the lease runs out by itself
        this.#log?.warn({ lock: lock.name, code: err instanceof AppError ? err.code : 'error' }, 'lease lock release failed; it expires by itself')
      }
    }
  }

  protected async workflowVisible (scope: Scope, id: string): Promise<boolean> {
    const visible = await this.#rows(scope, (c) => c.from('mvp_workflows').select('id').eq('id', id).limit(1))
    return (visible ?? []).length > 0
  }

  async listExecutionHistory (scope: Scope, workflowId: string, q: ExecutionListQuery): Promise<ExecutionRow[] | undefined> {
    if (!await this.workflowVisible(scope, workflowId)) return undefined
    const rows = await this.#rows(scope, (c) => {
      let b = c.from('workflow_executions').select(EXECUTION_COLUMNS).eq('workflow_id', workflowId)
      if (q.beforeSeq !== null) b = b.lt('n8n_execution_seq', q.beforeSeq)
      if (q.status !== null) b = b.eq('status', q.status)
      return b.order('n8n_execution_seq', { ascending: false, nullsFirst: false }).limit(q.limit)
    })
    return (rows ?? []).map((r) => withUtcTimestamps(r, ['started_at', 'stopped_at', 'created_at', 'updated_at']) as unknown as ExecutionRow)
  }

  async listSyncLogs (scope: Scope, q: SyncLogListQuery): Promise<SyncLogRow[]> {
    const rows = await this.#rows(scope, (c) => {
      let b = c.from('sync_logs').select(SYNC_LOG_COLUMNS)
      if (q.before) {
        const ts = quoted(q.before.created)
        b = b.or(`created_at.lt.${ts},and(created_at.eq.${ts},id.lt.${q.before.id})`)
      }
      return b.order('created_at', { ascending: false }).order('id', { ascending: false }).limit(q.limit)
    })
    return (rows ?? []).map((r) => withUtcTimestamps(r, ['created_at']) as unknown as SyncLogRow)
  }

  // ---- live events (reads only: Supabase mode has no LISTEN; dashboards use Supabase Realtime) ----

  async eventLogPosition (scope: Scope): Promise<EventLogPosition> {
    const userId = userIdOf(scope)
    const [head, horizon] = await Promise.all([
      this.#rows(scope, (c) => c.from('workflow_events').select('id').eq('user_id', userId).order('id', { ascending: false }).limit(1)),
      this.#rows(scope, (c) => c.from('workflow_events_purged').select('purged_through').limit(1))
    ])
    return { head: Number(head?.[0]?.id ?? 0), horizon: Number(horizon?.[0]?.purged_through ?? 0) }
  }

  async readEventLog (scope: Scope, afterId: number, limit: number): Promise<EventLogRow[]> {
    const userId = userIdOf(scope)
    const out: EventLogRow[] = []
    // in pages under max_rows
    while (out.length < limit) {
      const want = Math.min(PAGE_ROWS, limit - out.length)
      const from = out.at(-1)?.id ?? afterId
      const page = await this.#rows(scope, (c) => c.from('workflow_events').select('id, op, workflow_id').eq('user_id', userId).gt('id', from)
        .order('id', { ascending: true }).limit(want)) ?? []
      for (const r of page) out.push({ id: Number(r.id), op: r.op as EventLogRow['op'], workflow_id: String(r.workflow_id) })
      if (page.length < want) break
    }
    return out
  }

  async workflowsByIds (scope: Scope, ids: string[]): Promise<Workflow[]> {
    const out: Workflow[] = []
    for (let i = 0; i < ids.length; i += IDS_PER_URL) {
      const chunk = ids.slice(i, i + IDS_PER_URL)
      const rows = await this.#rows(scope, (c) => {
        let b = c.from('mvp_workflows').select(WORKFLOW_FIELDS.join(', ')).in('id', chunk)
        if (scope.kind === 'user') b = b.eq('user_id', scope.userId)
        return b
      }) ?? []
      for (const r of rows) {
        const { deploy_attempts: _d, ...row } = workflowRowFromJson(r)
        out.push(row)
      }
    }
    return out
  }
}

/** An argument as JSON for rpc: jsonb given as text is parsed back (PostgREST takes one JSON body). */
function restValue (arg: Arg): unknown {
  return arg.json !== undefined ? JSON.parse(arg.json) as unknown : arg.value
}

export { SupabaseError }
