import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError } from '../errors.ts'
import type { ValidationIssue } from '../errors.ts'

// Postgres cannot store U+0000 in text or jsonb: such a string would reach the database and fail
// there as a 500. Every string that enters (body values and keys at any depth, query, path
// parameters, headers) is checked here, before validation, and answered 400 naming the field.

const NUL = '\u0000'
const MAX_ISSUES = 20
const MESSAGE = 'must not contain the NUL character (\\u0000)'

function segment (key: string): string {
  return key.replaceAll(NUL, '\\u0000').replaceAll('/', '~1')
}

/** Paths (`body/nodes/0/name`) of every string or key holding NUL, depth-first, at most MAX_ISSUES. */
export function findNul (value: unknown, path: string, out: ValidationIssue[] = [], depth = 0): ValidationIssue[] {
  if (out.length >= MAX_ISSUES || depth > 64) return out
  if (typeof value === 'string') {
    if (value.includes(NUL)) out.push({ path, message: MESSAGE })
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => findNul(v, `${path}/${i}`, out, depth + 1))
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = `${path}/${segment(k)}`
      if (k.includes(NUL)) out.push({ path: p, message: `key ${MESSAGE}` })
      findNul(v, p, out, depth + 1)
    }
  }
  return out
}

/** Whether any string or key holds NUL: the common (clean) request pays no path strings. */
function hasNul (value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes(NUL)
  if (value === null || typeof value !== 'object' || depth > 64) return false
  if (Array.isArray(value)) {
    for (const v of value) if (hasNul(v, depth + 1)) return true
    return false
  }
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue
    if (k.includes(NUL) || hasNul((value as Record<string, unknown>)[k], depth + 1)) return true
  }
  return false
}

export function nulIssues (request: FastifyRequest): ValidationIssue[] {
  if (!hasNul(request.headers) && !hasNul(request.params) && !hasNul(request.query) && !hasNul(request.body)) return []
  const issues: ValidationIssue[] = []
  findNul(request.headers, 'headers', issues)
  findNul(request.params, 'params', issues)
  findNul(request.query, 'querystring', issues)
  findNul(request.body, 'body', issues)
  return issues
}

async function inputGuardPlugin (app: FastifyInstance): Promise<void> {
  // A callback hook: the common (clean) request pays no promise.
  app.addHook('preValidation', (request, _reply, done) => {
    const issues = nulIssues(request)
    if (issues.length === 0) {
      done()
      return
    }
    done(new AppError('validation_failed', `The request contains the NUL character (\\u0000) in ${issues.map((i) => i.path).join(', ')}`, { errors: issues }))
  })
}

export default fp(inputGuardPlugin, { name: 'input-guard' })
