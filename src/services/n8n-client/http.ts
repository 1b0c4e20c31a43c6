// The HTTP core under N8nClient: one attempt loop per call (timeout, retries with backoff and
// jitter for idempotent calls, honouring Retry-After within a cap), the API key header, one
// report per attempt for metrics, and n8n's answers turned into N8nError without the key.
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { N8nError, NO_API_KEY_MESSAGE, networkCause } from './errors.ts'
import { noBody } from './schemas.ts'
import type { Parser } from './schemas.ts'
import type { N8nCallInfo, N8nClientOptions } from './types.ts'

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

// Templated paths: metrics labels and error messages name these, never an id.
export const R_WORKFLOWS = '/workflows'
export const R_WORKFLOW = '/workflows/:id'
export const R_ACTIVATE = '/workflows/:id/activate'
export const R_DEACTIVATE = '/workflows/:id/deactivate'
export const R_EXECUTIONS = '/executions'
export const R_EXECUTION = '/executions/:id'

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504])
const UNAVAILABLE_STATUS = new Set([429, 502, 503, 504])
const REJECTED_STATUS = new Set([400, 409, 413, 422])
const MAX_MESSAGE = 500
// Visible ASCII, inner spaces allowed: anything else makes fetch throw an error that quotes the value.
const HEADER_VALUE_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

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

function describeShapeError (err: z.ZodError): string {
  const issue = err.issues[0]
  if (!issue) return ''
  const path = issue.path.map(String).join('.')
  return ` (at ${path === '' ? '<root>' : path}: ${issue.code})`
}

export class N8nHttp {
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

  guardCursor (seen: Set<string>, cursor: string, method: string, route: string): void {
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

  async call<T> (method: Method, route: string, path: string, body: string | undefined, retryable: boolean, parse: Parser<T>): Promise<T> {
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
