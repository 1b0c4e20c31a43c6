// Inject wrapper and problem+json assertions shared by the route tests.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import nock from 'nock'
import { buildTestApp } from './app.ts'
import { N8N_API_KEY, recordUnmatched } from './n8n-nock.ts'

/** Every answer of a test file passes through here: none may ever carry the n8n API key. */
export function injector (app: FastifyInstance, seen: { bodies: number, leaks: string[] } = { bodies: 0, leaks: [] }) {
  const inject = async (opts: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await app.inject(opts)
    seen.bodies++
    const all = res.body + JSON.stringify(res.headers)
    if (all.includes(N8N_API_KEY)) seen.leaks.push(`${String(opts.method ?? 'GET')} ${String(opts.url)}`)
    return res
  }
  return { inject, seen }
}

const PROBLEM_KEYS = ['code', 'detail', 'requestId', 'status', 'title', 'type']

/** A problem+json answer with the contract's fields and nothing that reveals internals. */
export function assertProblem (t: Test, res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status} (${res.body.slice(0, 300)})`)
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, 'content-type problem+json')
  let body: Record<string, unknown> = {}
  try {
    body = res.json()
  } catch {
    t.fail('body is JSON')
  }
  t.equal(body.code, code, 'code')
  t.equal(body.status, status, 'body.status')
  t.equal(body.type, `https://workflow-sync.dev/problems/${code}`, 'type')
  t.equal(typeof body.title, 'string', 'title')
  t.equal(typeof body.detail, 'string', 'detail')
  t.equal(body.requestId, res.headers['x-request-id'], 'requestId is the x-request-id header')
  const extra = Object.keys(body).filter((k) => !PROBLEM_KEYS.includes(k) && k !== 'errors')
  t.same(extra, [], 'no keys beyond the contract')
  t.notMatch(res.body, /\bat .+\.(ts|js):\d+|node_modules|stack/i, 'no stack trace')
  t.notMatch(res.body, /\b(select|insert|update|delete)\b.+\b(from|into|set|where)\b|mvp_workflows|idempotency_keys/i, 'no SQL')
  t.notMatch(res.body, N8N_API_KEY, 'no API key')
  return body
}

/** A validation problem naming the given paths. */
export function assertValidation (t: Test, res: LightMyRequestResponse, paths: string[]): Record<string, unknown> {
  const body = assertProblem(t, res, 400, 'validation_failed')
  const errors = body.errors as Array<{ path: string, message: string }> | undefined
  t.ok(Array.isArray(errors) && errors.length > 0, 'errors[] present')
  for (const p of paths) t.ok(errors?.some((e) => e.path === p && typeof e.message === 'string' && e.message.length > 0), `errors[] names ${p}: ${JSON.stringify(errors)}`)
  return body
}

/**
 * A route-test app with n8n faked by nock: no real network, every answer checked for leaks by
 * `inject`, unmatched n8n requests recorded, and everything torn down with the test file.
 */
export async function nockedTestApp (t: Test, opts: Parameters<typeof buildTestApp>[0] & { cleanNockAfterEach?: boolean } = {}) {
  const { cleanNockAfterEach = true, ...appOpts } = opts
  nock.disableNetConnect()
  const h = await buildTestApp({ ...appOpts, env: { RATE_LIMIT_MAX: '100000', ...appOpts.env } })
  const { inject, seen } = injector(h.app)
  const unmatched = recordUnmatched()
  t.teardown(async () => {
    unmatched.stop()
    nock.cleanAll()
    nock.enableNetConnect()
    await h.close()
  })
  if (cleanNockAfterEach) t.afterEach(() => { nock.cleanAll() })
  return { h, inject, seen, unmatched }
}
