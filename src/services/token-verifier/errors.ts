// The answers of a failed verification: generic (the failing check only in the non-enumerable
// `cause`, for server logs), with the WWW-Authenticate header RFC 6750 asks for.
import { AppError } from '../../errors.ts'

const INVALID_MESSAGE = 'The access token is invalid'
const EXPIRED_MESSAGE = 'The access token has expired'
const WWW_INVALID = { 'www-authenticate': 'Bearer error="invalid_token"' }
const WWW_FORBIDDEN = { 'www-authenticate': 'Bearer error="insufficient_scope"' }

export function invalidToken (reason: string): AppError {
  return new AppError('invalid_token', INVALID_MESSAGE, { headers: WWW_INVALID, cause: reason })
}

export function tokenExpired (): AppError {
  return new AppError('token_expired', EXPIRED_MESSAGE, {
    headers: { 'www-authenticate': 'Bearer error="invalid_token", error_description="The access token expired"' },
    cause: 'exp'
  })
}

export function forbidden (message: string): AppError {
  return new AppError('forbidden', message, { headers: WWW_FORBIDDEN, cause: 'role' })
}
