// Thin, typed client for n8n's public REST API v1 (n8n 1.x and 2.x).
// Plain class, no Fastify: routes, workers, scripts and tests use it directly.
//
// - Auth header X-N8N-API-KEY; the key never appears in any error, message or callback.
// - Idempotent calls (GET, PUT, DELETE, activate, deactivate) are retried on 429, 500, 502,
//   503, 504, network errors and timeouts, with exponential backoff and full jitter, honouring
//   Retry-After (capped). POST /workflows (create) is never retried: it could duplicate.
// - Responses are validated lightly with zod; ids are normalised to strings.
// - Failures become AppError (N8nError) with problem codes from ./errors.ts.

import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { AppError } from '../errors.ts'
import type { ProblemCode } from '../errors.ts'

// ---------------------------------------------------------------------------
// Public types

export interface N8nNode {
  id?: string
  name: string
  type: string
  typeVersion?: number
  position?: [number, number]
  parameters?: Record<string, unknown>
  [key: string]: unknown
}

export interface N8nTag {
  id: string
  name: string
  [key: string]: unknown
}

export interface N8nWorkflow {
  id: string
  name: string
  active: boolean
  nodes: N8nNode[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  staticData?: Record<string, unknown> | null
  createdAt: string
  updatedAt: string
  tags?: N8nTag[]
  [key: string]: unknown
}

/** What n8n accepts on create and on PUT (full replace). Only these keys are ever sent. */
export interface N8nWorkflowInput {
  name: string
  nodes: N8nNode[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  staticData?: Record<string, unknown> | null
}

export type N8nExecutionStatus =
  | 'canceled' | 'crashed' | 'error' | 'new' | 'running' | 'success' | 'unknown' | 'waiting'

export interface N8nExecution {
  id: string
  finished: boolean
  mode: string
  retryOf: string | null
  retrySuccessId: string | null
  /** One of N8nExecutionStatus in the versions we know; kept open for future ones. */
  status: N8nExecutionStatus | (string & {})
  startedAt: string | null
  stoppedAt: string | null
  workflowId: string
  waitTill: string | null
  /** Present only with includeData=true. */
  data?: unknown
  [key: string]: unknown
}

export interface N8nPage<T> {
  data: T[]
  nextCursor: string | null
}

export interface N8nExecutionPage extends N8nPage<N8nExecution> {
  /** The cursor that produced this page (null for the first page). */
  cursor: string | null
}

export interface ListWorkflowsQuery {
  active?: boolean
  name?: string
  tags?: string
  /** 1..250 (clamped). */
  limit?: number
  cursor?: string
}

export interface ListExecutionsQuery {
  workflowId?: string
  status?: string
  /** 1..250 (clamped). */
  limit?: number
  cursor?: string
  includeData?: boolean
}

export type DeleteWorkflowResult = { deleted: true } | { deleted: false, reason: 'not_found' }

export interface N8nCallInfo {
  method: string
  /** Templated path, e.g. `/workflows/:id`: safe as a metrics label. */
  route: string
  /** HTTP status of the attempt, null when there was no answer (network error, timeout). */
  status: number | null
  durationMs: number
  /** One report per attempt: 'retry' when another attempt follows. */
  outcome: 'ok' | 'error' | 'retry'
}

export interface N8nClientOptions {
  /** e.g. http://127.0.0.1:5678/api/v1 */
  baseUrl: string
  apiKey?: string
  /** Per attempt. Default 10000. */
  timeoutMs?: number
  /** Extra attempts for idempotent calls. Default 3. */
  retries?: number
  /** Default 200. */
  retryBaseDelayMs?: number
  /** Cap for backoff and for Retry-After. Default 5000. */
  maxRetryDelayMs?: number
  onCall?: (info: N8nCallInfo) => void
  fetch?: typeof fetch
}

// ---------------------------------------------------------------------------
// Errors

/** AppError raised by the client; carries n8n's HTTP status (null: no answer) for logging. */
export class N8nError extends AppError {
  readonly n8nStatus: number | null
  readonly method: string
  readonly route: string
  /** n8n's own `message` for 5xx and unexpected statuses (not shown to users by default). */
  readonly n8nMessage?: string

  constructor (
    code: ProblemCode,
    message: string,
    info: {
      n8nStatus: number | null
      method: string
      route: string
      n8nMessage?: string
      headers?: Record<string, string>
      cause?: unknown
    }
  ) {
    const opts: { headers?: Record<string, string>, cause?: unknown } = {}
    if (info.headers) opts.headers = info.headers
    if (info.cause !== undefined) opts.cause = info.cause
    super(code, message, opts)
    this.n8nStatus = info.n8nStatus
    this.method = info.method
    this.route = info.route
    if (info.n8nMessage !== undefined) this.n8nMessage = info.n8nMessage
  }
}

export function isN8nError (err: unknown): err is N8nError {
  return err instanceof N8nError
}

/** True when n8n itself answered 404 (as opposed to a not_found raised by our own code). */
export function isN8nNotFound (err: unknown): err is N8nError {
  return err instanceof N8nError && err.n8nStatus === 404 && err.code === 'not_found'
}

// ---------------------------------------------------------------------------
// Response schemas (light: shape and types of the fields we rely on)

const idSchema = z.union([z.string(), z.number()]).transform(String)
const nullableIdSchema = z.union([z.string(), z.number()]).nullish().transform((v) => v == null ? null : String(v))
const nullableString = z.string().nullish().transform((v) => v ?? null)
const recordSchema = z.record(z.string(), z.unknown())

const nodeSchema = z.looseObject({ name: z.string(), type: z.string() })
const tagSchema = z.looseObject({ id: idSchema, name: z.string() })

const workflowSchema = z.looseObject({
  id: idSchema,
  name: z.string(),
  active: z.boolean(),
  nodes: z.array(nodeSchema),
  connections: recordSchema,
  // Be lenient: settings may be missing/null on very old rows.
  settings: recordSchema.nullish().transform((v) => v ?? {}),
  staticData: recordSchema.nullish(),
  createdAt: z.string(),
  updatedAt: z.string(),
  tags: z.array(tagSchema).optional()
})

const executionSchema = z.looseObject({
  id: idSchema,
  finished: z.boolean(),
  mode: z.string(),
  retryOf: nullableIdSchema,
  retrySuccessId: nullableIdSchema,
  status: z.string(),
  startedAt: nullableString,
  stoppedAt: nullableString,
  workflowId: idSchema,
  waitTill: nullableString
})

const cursorSchema = z.string().nullish().transform((v) => v == null || v === '' ? null : v)
const workflowListSchema = z.object({ data: z.array(workflowSchema), nextCursor: cursorSchema })
const executionListSchema = z.object({ data: z.array(executionSchema), nextCursor: cursorSchema })

// ---------------------------------------------------------------------------
// Internals

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'
type Parser<T> = (json: unknown) => T

const R_WORKFLOWS = '/workflows'
const R_WORKFLOW = '/workflows/:id'
const R_ACTIVATE = '/workflows/:id/activate'
const R_DEACTIVATE = '/workflows/:id/deactivate'
const R_EXECUTIONS = '/executions'
const R_EXECUTION = '/executions/:id'

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504])
const UNAVAILABLE_STATUS = new Set([429, 502, 503, 504])
const REJECTED_STATUS = new Set([400, 409, 413, 422])
const MAX_MESSAGE = 500
const MAX_LIMIT = 250
// Visible ASCII, inner spaces allowed: anything else makes fetch throw an error that quotes the value.
const HEADER_VALUE_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

function parserFor<S extends z.ZodType> (schema: S): Parser<z.output<S>> {
  return (json) => {
    const r = schema.safeParse(json)
    if (r.success) return r.data
    throw r.error
  }
}

// Built once: no per-call closures.
const parseWorkflow: Parser<N8nWorkflow> = parserFor(workflowSchema)
const parseWorkflowList: Parser<N8nPage<N8nWorkflow>> = parserFor(workflowListSchema)
const parseExecution: Parser<N8nExecution> = parserFor(executionSchema)
const parseExecutionList: Parser<N8nPage<N8nExecution>> = parserFor(executionListSchema)
const noBody: Parser<undefined> = () => undefined

function clampLimit (limit: number): number {
  if (!Number.isFinite(limit)) return MAX_LIMIT
  return Math.min(MAX_LIMIT, Math.max(1, Math.trunc(limit)))
}

function encodeId (id: string, what: string): string {
  if (typeof id !== 'string' || id === '' || id === '.' || id === '..') {
    throw new AppError('validation_failed', `invalid n8n ${what} id`)
  }
  return encodeURIComponent(id)
}

/** Retry-After as milliseconds (seconds or HTTP date), null when absent or unparsable. */
function parseRetryAfter (value: string | null): number | null {
  if (value === null) return null
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  if (Number.isNaN(at)) return null
  return Math.max(0, at - Date.now())
}

function isTimeout (err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
}

const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connect timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed by n8n',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out'
}

/** What went wrong on the wire, in words: fetch hides the system error in `cause` (sometimes two deep). */
export function networkCause (err: unknown): string {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') {
      const known = NETWORK_CAUSES[code]
      if (known !== undefined) return known
      if (/CERT|SSL|TLS/.test(code)) return `TLS error (${code})`
    }
    const message = (e as { message?: unknown }).message
    if (typeof message === 'string') {
      const m = /\b(E[A-Z_]{4,})\b/.exec(message)
      const known = m?.[1] === undefined ? undefined : NETWORK_CAUSES[m[1]]
      if (known !== undefined) return known
    }
  }
  return 'network error'
}

/** The message of every call made while N8N_API_KEY is unset (none is attempted). */
export const NO_API_KEY_MESSAGE = 'N8N_API_KEY is not set, so n8n is not called; set it to an n8n API key (n8n: Settings → n8n API) and restart'

function describeShapeError (err: z.ZodError): string {
  const issue = err.issues[0]
  if (!issue) return ''
  const path = issue.path.map(String).join('.')
  return ` (at ${path === '' ? '<root>' : path}: ${issue.code})`
}

export class N8nClient {
  readonly #base: string
  /** Named in network errors (never a path or credentials). */
  readonly #origin: string
  readonly #apiKey: string | undefined
  readonly #timeoutMs: number
  readonly #retries: number
  readonly #baseDelay: number
  readonly #maxDelay: number
  readonly #onCall: ((info: N8nCallInfo) => void) | undefined
  readonly #fetch: typeof fetch | undefined
  // Reused for every call (fetch copies them into its own Headers).
  readonly #headers: Record<string, string>
  readonly #jsonHeaders: Record<string, string>

  constructor (options: N8nClientOptions) {
    let url: URL
    try {
      url = new URL(options.baseUrl)
    } catch {
      throw new TypeError('N8nClient: baseUrl is not a valid URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError('N8nClient: baseUrl must be http(s)')
    }
    if (url.username !== '' || url.password !== '') {
      // fetch refuses such URLs; and credentials do not belong in a URL that may be logged.
      throw new TypeError('N8nClient: baseUrl must not contain credentials')
    }
    this.#base = options.baseUrl.replace(/\/+$/, '')
    this.#origin = url.origin
    const key = options.apiKey === '' ? undefined : options.apiKey
    if (key !== undefined && !HEADER_VALUE_RE.test(key)) {
      // Never echo the value.
      throw new TypeError('N8nClient: apiKey contains characters that are not allowed in an HTTP header')
    }
    this.#apiKey = key
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#retries = Math.max(0, Math.trunc(options.retries ?? 3))
    this.#baseDelay = Math.max(0, options.retryBaseDelayMs ?? 200)
    this.#maxDelay = Math.max(0, options.maxRetryDelayMs ?? 5000)
    this.#onCall = options.onCall
    this.#fetch = options.fetch
    this.#headers = { accept: 'application/json' }
    if (key !== undefined) this.#headers['X-N8N-API-KEY'] = key
    this.#jsonHeaders = { ...this.#headers, 'content-type': 'application/json' }
  }

  // ---- workflows ---------------------------------------------------------

  async listWorkflows (query: ListWorkflowsQuery = {}): Promise<N8nPage<N8nWorkflow>> {
    const params = new URLSearchParams()
    if (query.active !== undefined) params.set('active', query.active ? 'true' : 'false')
    if (query.name !== undefined) params.set('name', query.name)
    if (query.tags !== undefined) params.set('tags', query.tags)
    if (query.limit !== undefined) params.set('limit', String(clampLimit(query.limit)))
    if (query.cursor !== undefined) params.set('cursor', query.cursor)
    const qs = params.size === 0 ? '' : '?' + params.toString()
    return await this.#call('GET', R_WORKFLOWS, '/workflows' + qs, undefined, true, parseWorkflowList)
  }

  /** Every workflow matching the query, following nextCursor across pages. */
  async * iterateWorkflows (query: Omit<ListWorkflowsQuery, 'cursor'> = {}): AsyncGenerator<N8nWorkflow, void, undefined> {
    let cursor: string | undefined
    const seen = new Set<string>()
    for (;;) {
      const page = await this.listWorkflows(cursor === undefined ? query : { ...query, cursor })
      yield * page.data
      if (page.nextCursor === null) return
      this.#guardCursor(seen, page.nextCursor, 'GET', R_WORKFLOWS)
      cursor = page.nextCursor
    }
  }

  async getWorkflow (id: string): Promise<N8nWorkflow> {
    return await this.#call('GET', R_WORKFLOW, '/workflows/' + encodeId(id, 'workflow'), undefined, true, parseWorkflow)
  }

  /** Not retried automatically: a retry after a lost answer could create a duplicate. */
  async createWorkflow (body: N8nWorkflowInput): Promise<N8nWorkflow> {
    return await this.#call('POST', R_WORKFLOWS, '/workflows', serialiseWorkflow(body), false, parseWorkflow)
  }

  /** Full replace (PUT). n8n 2.x republishes a published workflow automatically. */
  async updateWorkflow (id: string, body: N8nWorkflowInput): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow')
    return await this.#call('PUT', R_WORKFLOW, path, serialiseWorkflow(body), true, parseWorkflow)
  }

  /** A 404 counts as already gone. Also deletes the workflow's executions in n8n. */
  async deleteWorkflow (id: string): Promise<DeleteWorkflowResult> {
    try {
      await this.#call('DELETE', R_WORKFLOW, '/workflows/' + encodeId(id, 'workflow'), undefined, true, noBody)
      return { deleted: true }
    } catch (err) {
      if (isN8nNotFound(err)) return { deleted: false, reason: 'not_found' }
      throw err
    }
  }

  /** Idempotent in n8n ("publish" in 2.x). 400 without a trigger node → n8n_rejected. */
  async activateWorkflow (id: string): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow') + '/activate'
    return await this.#call('POST', R_ACTIVATE, path, undefined, true, parseWorkflow)
  }

  async deactivateWorkflow (id: string): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow') + '/deactivate'
    return await this.#call('POST', R_DEACTIVATE, path, undefined, true, parseWorkflow)
  }

  // ---- executions --------------------------------------------------------

  async listExecutions (query: ListExecutionsQuery = {}): Promise<N8nPage<N8nExecution>> {
    const params = new URLSearchParams()
    if (query.workflowId !== undefined) params.set('workflowId', query.workflowId)
    if (query.status !== undefined) params.set('status', query.status)
    if (query.limit !== undefined) params.set('limit', String(clampLimit(query.limit)))
    if (query.cursor !== undefined) params.set('cursor', query.cursor)
    if (query.includeData !== undefined) params.set('includeData', query.includeData ? 'true' : 'false')
    const qs = params.size === 0 ? '' : '?' + params.toString()
    return await this.#call('GET', R_EXECUTIONS, '/executions' + qs, undefined, true, parseExecutionList)
  }

  /**
   * One page at a time (newest first), following nextCursor. `query.cursor` resumes from a
   * stored cursor. Each page carries the cursor that produced it and the next one.
   */
  async * iterateExecutionPages (query: ListExecutionsQuery = {}): AsyncGenerator<N8nExecutionPage, void, undefined> {
    let cursor: string | null = query.cursor ?? null
    const seen = new Set<string>()
    for (;;) {
      const page = await this.listExecutions(cursor === null ? { ...query, cursor: undefined } : { ...query, cursor })
      yield { data: page.data, cursor, nextCursor: page.nextCursor }
      if (page.nextCursor === null) return
      this.#guardCursor(seen, page.nextCursor, 'GET', R_EXECUTIONS)
      cursor = page.nextCursor
    }
  }

  async getExecution (id: string, options: { includeData?: boolean } = {}): Promise<N8nExecution> {
    let path = '/executions/' + encodeId(id, 'execution')
    if (options.includeData !== undefined) path += options.includeData ? '?includeData=true' : '?includeData=false'
    return await this.#call('GET', R_EXECUTION, path, undefined, true, parseExecution)
  }

  // ---- health ------------------------------------------------------------

  /** Cheap readiness probe (GET /workflows?limit=1, one attempt). Never throws. */
  async ping (timeoutMs: number = this.#timeoutMs): Promise<boolean> {
    if (this.#apiKey === undefined) return false
    const started = performance.now()
    let status: number | null = null
    try {
      const f = this.#fetch ?? globalThis.fetch
      const res = await f(this.#base + '/workflows?limit=1', {
        method: 'GET',
        headers: this.#headers,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual'
      })
      status = res.status
      await res.body?.cancel()
      this.#report('GET', R_WORKFLOWS, status, started, res.ok ? 'ok' : 'error')
      return res.ok
    } catch {
      this.#report('GET', R_WORKFLOWS, status, started, 'error')
      return false
    }
  }

  // ---- core --------------------------------------------------------------

  #guardCursor (seen: Set<string>, cursor: string, method: string, route: string): void {
    if (seen.has(cursor)) {
      throw new N8nError('n8n_error', 'n8n returned the same pagination cursor twice', { n8nStatus: 200, method, route })
    }
    seen.add(cursor)
  }

  #report (method: string, route: string, status: number | null, started: number, outcome: N8nCallInfo['outcome']): void {
    const onCall = this.#onCall
    if (onCall === undefined) return
    try {
      onCall({ method, route, status, durationMs: performance.now() - started, outcome })
    } catch {
      // A metrics callback must never break a call.
    }
  }

  #backoff (attempt: number, retryAfterMs: number | null): number {
    if (retryAfterMs !== null) return Math.min(retryAfterMs, this.#maxDelay)
    return Math.random() * Math.min(this.#maxDelay, this.#baseDelay * 2 ** attempt)
  }

  #redact (text: string): string {
    const key = this.#apiKey
    if (key === undefined || !text.includes(key)) return text
    return text.split(key).join('[redacted]')
  }

  async #call<T> (method: Method, route: string, path: string, body: string | undefined, retryable: boolean, parse: Parser<T>): Promise<T> {
    // Without a key n8n refuses every call: say why instead of asking.
    if (this.#apiKey === undefined) throw new N8nError('n8n_unavailable', NO_API_KEY_MESSAGE, { n8nStatus: null, method, route })
    const url = this.#base + path
    const headers = body === undefined ? this.#headers : this.#jsonHeaders
    const maxAttempt = retryable ? this.#retries : 0
    for (let attempt = 0; ; attempt++) {
      const started = performance.now()
      let status: number | null = null
      let res: Response
      let text: string
      try {
        const f = this.#fetch ?? globalThis.fetch
        const init: RequestInit = { method, headers, signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'manual' }
        if (body !== undefined) init.body = body
        res = await f(url, init)
        status = res.status
        text = await res.text()
      } catch (err) {
        if (attempt < maxAttempt) {
          this.#report(method, route, status, started, 'retry')
          await sleep(this.#backoff(attempt, null))
          continue
        }
        this.#report(method, route, status, started, 'error')
        throw this.#networkError(err, method, route, status)
      }

      if (status >= 200 && status < 300) {
        try {
          const value = parse === noBody ? (undefined as T) : parse(text === '' ? undefined : JSON.parse(text))
          this.#report(method, route, status, started, 'ok')
          return value
        } catch (err) {
          this.#report(method, route, status, started, 'error')
          throw this.#shapeError(err, method, route, status)
        }
      }

      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'))
      if (attempt < maxAttempt && RETRYABLE_STATUS.has(status)) {
        this.#report(method, route, status, started, 'retry')
        await sleep(this.#backoff(attempt, retryAfterMs))
        continue
      }
      this.#report(method, route, status, started, 'error')
      throw this.#httpError(status, text, retryAfterMs, method, route)
    }
  }

  #networkError (err: unknown, method: string, route: string, status: number | null): N8nError {
    const what = isTimeout(err) ? `timed out after ${this.#timeoutMs} ms at ${this.#origin}` : `failed: ${networkCause(err)} at ${this.#origin}`
    const message = `n8n request ${method} ${route} ${what}`
    // Keep the cause for logs unless it somehow quotes the key.
    let cause: unknown = err
    if (this.#apiKey !== undefined && err instanceof Error &&
        (err.message.includes(this.#apiKey) || (err.stack ?? '').includes(this.#apiKey))) {
      cause = undefined
    }
    return new N8nError('n8n_unavailable', message, { n8nStatus: status, method, route, cause })
  }

  #shapeError (err: unknown, method: string, route: string, status: number): N8nError {
    const detail = err instanceof z.ZodError
      ? 'an unexpected response shape' + describeShapeError(err)
      : 'a response that is not valid JSON'
    return new N8nError('n8n_error', `n8n returned ${detail} for ${method} ${route}`, { n8nStatus: status, method, route })
  }

  #httpError (status: number, text: string, retryAfterMs: number | null, method: string, route: string): N8nError {
    const n8nMessage = this.#extractMessage(text)
    const info = { n8nStatus: status, method, route }

    if (status === 401 || status === 403) {
      const why = this.#apiKey === undefined ? ' (no API key is configured)' : ''
      return new N8nError('n8n_error', `n8n rejected the service's API key (HTTP ${status})${why}`, info)
    }
    if (status === 404) {
      if (route === R_WORKFLOWS || route === R_EXECUTIONS) {
        // A collection never 404s in n8n: wrong base URL or the public API is disabled.
        return new N8nError('n8n_error', `n8n answered HTTP 404 for ${method} ${route}; check the n8n base URL (…/api/v1) and that n8n's public API is enabled`, info)
      }
      return new N8nError('not_found', route.startsWith('/executions') ? 'n8n execution not found' : 'n8n workflow not found', info)
    }
    if (REJECTED_STATUS.has(status)) {
      const text = n8nMessage ?? `n8n rejected the request (HTTP ${status})`
      const message = route === R_ACTIVATE && /trigger|poller|webhook/i.test(text)
        ? `n8n cannot activate the workflow: ${text}`
        : text
      return new N8nError('n8n_rejected', message, info)
    }
    const withMessage = n8nMessage === undefined ? info : { ...info, n8nMessage }
    if (UNAVAILABLE_STATUS.has(status)) {
      const headers = status === 429 && retryAfterMs !== null
        ? { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }
        : undefined
      const what = status === 429 ? 'is rate limiting requests' : 'is unavailable'
      return new N8nError('n8n_unavailable', `n8n ${what} (HTTP ${status} for ${method} ${route})`,
        headers === undefined ? withMessage : { ...withMessage, headers })
    }
    if (status >= 300 && status < 400) {
      return new N8nError('n8n_error', `n8n answered with a redirect (HTTP ${status}); check the n8n base URL`, info)
    }
    return new N8nError('n8n_error', `n8n answered HTTP ${status} for ${method} ${route}`, withMessage)
  }

  #extractMessage (text: string): string | undefined {
    if (text === '') return undefined
    let message: unknown
    try {
      const json: unknown = JSON.parse(text)
      if (json !== null && typeof json === 'object' && 'message' in json) message = json.message
    } catch {
      return undefined
    }
    if (typeof message !== 'string' || message === '') return undefined
    const clipped = message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE) + '…' : message
    return this.#redact(clipped)
  }
}

function serialiseWorkflow (body: N8nWorkflowInput): string {
  // Pick the writable fields only: n8n rejects additional properties (and 1.x rejects 2.x ones).
  const out: N8nWorkflowInput = {
    name: body.name,
    nodes: body.nodes,
    connections: body.connections,
    settings: body.settings
  }
  if (body.staticData !== undefined) out.staticData = body.staticData
  return JSON.stringify(out)
}
