// Failures of n8n calls: an AppError (N8nError) with a problem code, n8n's status for logs, and a
// message that names the route and the origin, never a path, a query or the API key.
import { AppError } from '../../errors.ts'
import type { ProblemCode } from '../../errors.ts'

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
