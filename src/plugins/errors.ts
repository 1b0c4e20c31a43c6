import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors, ResponseSerializationError } from 'fastify-type-provider-zod'
import { AppError, problemStatus, problemTitles } from '../errors.ts'
import type { ProblemCode, ValidationIssue } from '../errors.ts'
import { SupabaseError } from '../db/errors.ts'
import type { Problem } from '../schemas/problem.ts'

export const PROBLEM_TYPE_BASE = 'https://workflow-sync.dev/problems/'

export function problemBody (request: FastifyRequest, code: ProblemCode, detail: string, status = problemStatus[code], errors?: ValidationIssue[]): Problem {
  const body: Problem = {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: problemTitles[code],
    status,
    detail,
    code,
    requestId: String(request.id)
  }
  if (errors) body.errors = errors
  return body
}

export function sendProblem (reply: FastifyReply, body: Problem, headers?: Record<string, string>): FastifyReply {
  if (headers) reply.headers(headers)
  return reply.code(body.status).type('application/problem+json').serializer(JSON.stringify).send(body)
}

/** Maps any thrown value to a problem; anything unexpected becomes a bare 500 with no internals. */
export function toProblem (request: FastifyRequest, err: unknown): { body: Problem, headers?: Record<string, string>, unexpected: boolean } {
  // Database errors arrive as problems already (db/errors.ts maps them where the database is called).
  if (err instanceof AppError) {
    return { body: problemBody(request, err.code, err.message, err.status, err.errors), ...(err.headers ? { headers: err.headers } : {}), unexpected: false }
  }
  if (err instanceof SupabaseError) {
    // The Data API answered something this service does not expect: a bad gateway, not our bug.
    return { body: problemBody(request, 'database_error', `The Supabase Data API answered unexpectedly (HTTP ${err.status}${err.code ? `, code ${err.code}` : ''}); the request id identifies it in the logs`), unexpected: false }
  }
  const e = err as FastifyError & { validationContext?: string }
  if (hasZodFastifySchemaValidationErrors(e)) {
    const ctx = e.validationContext ?? 'request'
    const errors = e.validation.map((v) => ({ path: `${ctx}${v.instancePath}`.replace(/\/$/, ''), message: v.message ?? 'is invalid' }))
    // The detail names the fields, so that a person reading only it knows what to change.
    const named = errors.slice(0, 3).map((x) => `${x.path}: ${x.message}`).join('; ')
    const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''
    return { body: problemBody(request, 'validation_failed', `The request ${ctx} is invalid: ${named}${more}`, 400, errors), unexpected: false }
  }
  if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') {
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return { body: problemBody(request, 'payload_too_large', 'The request body is larger than the service accepts'), unexpected: false }
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return { body: problemBody(request, 'validation_failed', 'The request body is not valid JSON', 400, [{ path: 'body', message: 'invalid JSON' }]), unexpected: false }
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return { body: problemBody(request, 'validation_failed', 'Unsupported content type: send application/json', 415), unexpected: false }
      case 'FST_ERR_VALIDATION':
        return { body: problemBody(request, 'validation_failed', e.message, 400), unexpected: false }
    }
  }
  if (e && typeof e === 'object' && e.statusCode === 429) {
    return { body: problemBody(request, 'rate_limited', 'Too many requests; retry after the time in Retry-After'), unexpected: false }
  }
  if (e && typeof e === 'object' && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own client errors (bad content-length, malformed URL...): say so without internals.
    return { body: problemBody(request, 'validation_failed', 'The request is malformed', e.statusCode), unexpected: false }
  }
  return { body: problemBody(request, 'internal', 'An unexpected error occurred; the request id identifies it in the logs'), unexpected: true }
}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err, request, reply) => {
    const { body, headers, unexpected } = toProblem(request, err)
    // instanceof, not the library's isResponseSerializationError: that one only checks for a
    // `method` property, which every N8nError has, so each n8n refusal was logged as unhandled.
    if (unexpected || err instanceof ResponseSerializationError) {
      request.log.error({ err }, 'unhandled error')
    } else if (body.code === 'database_error') {
      request.log.error({ err }, 'unexpected answer from the Supabase Data API')
    } else if (body.status >= 500) {
      request.log.warn({ code: body.code, detail: body.detail }, 'dependency unavailable')
    }
    return sendProblem(reply, body, headers)
  })

  // Every route's path as a pattern, to tell "no such path" (404) from "not with this method" (405).
  const routes: Array<{ re: RegExp, methods: Set<string> }> = []
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || (route.url.endsWith('/*') && route.url.startsWith('/docs'))) return
    const source = route.url.split('/').map((seg) => seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('/')
    const re = new RegExp(`^${source}/?$`)
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const known = routes.find((r) => r.re.source === re.source)
    if (known) for (const m of methods) known.methods.add(m)
    else routes.push({ re, methods: new Set(methods) })
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = new Set<string>()
    for (const r of routes) if (r.re.test(path)) for (const m of r.methods) allowed.add(m)
    if (allowed.size > 0 && !allowed.has(request.method)) {
      if (allowed.has('GET')) allowed.add('HEAD')
      const allow = [...allowed].sort().join(', ')
      return sendProblem(reply, problemBody(request, 'method_not_allowed', `${request.method} is not allowed on ${path}; allowed: ${allow}`), { allow })
    }
    return sendProblem(reply, problemBody(request, 'not_found', `No route ${request.method} ${path}`))
  })
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a NUL or other invalid character in
 * a header, a malformed request line, oversized headers): a problem too, not Fastify's own JSON.
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, title, detail] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request timeout', 'The request was not received in time']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request header fields too large', 'The request headers are larger than the service accepts']
      : [400, problemTitles.validation_failed, `The request is malformed (${/HEADER/.test(err.code ?? '') ? 'an invalid character in a header, e.g. NUL' : 'invalid HTTP'})`]
  const requestId = randomUUID()
  const body = JSON.stringify({ type: `${PROBLEM_TYPE_BASE}validation_failed`, title, status, detail, code: 'validation_failed', requestId })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${title}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/problem+json\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

export default fp(errorsPlugin, { name: 'errors' })
