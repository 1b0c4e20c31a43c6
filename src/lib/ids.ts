/** A UUID in its canonical 8-4-4-4-12 hex form (any case): row ids, user ids (a token's `sub`). */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether `value` is a UUID; checked before an id reaches SQL, where a malformed one would be an error. */
export function isUuid (value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value)
}
