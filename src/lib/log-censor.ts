// What the logger censors: values under these keys, wherever a log line's fields could carry
// them. It runs as pino's `formatters.log` on every line, so the common line (a request or a
// response, class instances that pino's serializers reduce) costs a few key lookups and no copy.
// (Child loggers' bindings are not passed through it: the service binds only component names and
// request ids.) It replaced pino's `redact` list, whose `*.key` paths cost about 14 µs per
// request at LOG_LEVEL=info (a request's child logger and its two lines; this: 0.3 µs).

export const CENSORED = '[redacted]'

/** Keys whose values never reach a log line: credentials, keys, secrets, connection strings. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization', 'cookie', 'x-n8n-api-key', 'idempotency-key', 'apikey', 'apiKey', 'api_key',
  'token', 'accessToken', 'access_token', 'refresh_token', 'password',
  'N8N_API_KEY', 'CRON_SECRET', 'SUPABASE_JWT_SECRET', 'SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_ANON_KEY', 'DATABASE_URL',
  'serviceRoleKey', 'anonKey'
])

/** How deep plain objects are searched: `headers.authorization`, `req.headers.authorization`. */
const MAX_DEPTH = 3

// Plain objects and errors are what a line carries as it is (an error's own enumerable fields
// are printed by pino's err serializer). Other class instances (a Fastify request or reply) are
// reduced by a serializer to fields that hold no secret, and are not walked.
function searchable (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null || value instanceof Error
}

/**
 * `obj` with every value under a secret key replaced by CENSORED, in it and in the plain objects
 * and errors it holds (MAX_DEPTH levels). The same object when there is nothing to censor;
 * otherwise copies of the changed levels: the caller's object is never modified.
 */
export function censorSecrets<T> (obj: T, depth = 1): T {
  if (!searchable(obj)) return obj
  let out: Record<string, unknown> | undefined
  for (const key of Object.keys(obj)) {
    const value = obj[key]
    let next: unknown
    if (SECRET_KEYS.has(key)) {
      if (value === undefined || value === CENSORED) continue
      next = CENSORED
    } else if (depth < MAX_DEPTH && value !== null && typeof value === 'object') {
      next = censorSecrets(value, depth + 1)
      if (next === value) continue
    } else {
      continue
    }
    out ??= copyOf(obj)
    out[key] = next
  }
  return (out ?? obj) as T
}

// An error stays an error (pino's serializer prints its type, message and stack): a copy with the
// same prototype, message and stack, and its own enumerable fields.
function copyOf (obj: Record<string, unknown>): Record<string, unknown> {
  if (!(obj instanceof Error)) return { ...obj }
  const copy = Object.create(Object.getPrototypeOf(obj) as object) as Error & Record<string, unknown>
  Object.defineProperty(copy, 'message', { value: obj.message, enumerable: false, writable: true, configurable: true })
  if (obj.stack !== undefined) Object.defineProperty(copy, 'stack', { value: obj.stack, enumerable: false, writable: true, configurable: true })
  if (obj.cause !== undefined) Object.defineProperty(copy, 'cause', { value: obj.cause, enumerable: false, writable: true, configurable: true })
  return Object.assign(copy, obj)
}
