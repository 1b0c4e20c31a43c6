// Errors that services raise and the error plugin turns into problem+json answers.
// Kept free of Fastify so services, benchmarks and tests can use it directly.

export type ProblemCode =
  | 'validation_failed'
  | 'invalid_token'
  | 'token_expired'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'precondition_failed'
  | 'payload_too_large'
  | 'unprocessable'
  | 'rate_limited'
  | 'n8n_unavailable'
  | 'n8n_error'
  | 'n8n_rejected'
  | 'database_unavailable'
  | 'database_error'
  | 'internal'

export const problemTitles: Record<ProblemCode, string> = {
  validation_failed: 'Validation failed',
  invalid_token: 'Invalid token',
  token_expired: 'Token expired',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  precondition_failed: 'Precondition failed',
  payload_too_large: 'Payload too large',
  unprocessable: 'Unprocessable request',
  rate_limited: 'Too many requests',
  n8n_unavailable: 'n8n unavailable',
  n8n_error: 'n8n error',
  n8n_rejected: 'n8n rejected the workflow',
  database_unavailable: 'Database unavailable',
  database_error: 'Database error',
  internal: 'Internal error'
}

export const problemStatus: Record<ProblemCode, number> = {
  validation_failed: 400,
  invalid_token: 401,
  token_expired: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unprocessable: 422,
  rate_limited: 429,
  n8n_unavailable: 503,
  n8n_error: 502,
  n8n_rejected: 422,
  database_unavailable: 503,
  database_error: 502,
  internal: 500
}

export interface ValidationIssue {
  path: string
  message: string
}

export class AppError extends Error {
  readonly code: ProblemCode
  readonly status: number
  readonly errors?: ValidationIssue[]
  readonly headers?: Record<string, string>

  constructor (
    code: ProblemCode,
    message: string,
    options: { status?: number, errors?: ValidationIssue[], headers?: Record<string, string>, cause?: unknown } = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.status = options.status ?? problemStatus[code]
    if (options.errors) this.errors = options.errors
    if (options.headers) this.headers = options.headers
  }
}

export function isAppError (err: unknown): err is AppError {
  return err instanceof AppError
}
