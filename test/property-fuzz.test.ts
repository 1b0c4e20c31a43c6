// The fuzzer's three passes as a property: requests generated from the spec's schemas (valid
// shapes and junk), as a user, as cron and without credentials, against the app through inject.
// Every answer: no 5xx, a documented status (or the documented `default` problem), the documented
// content type, and for problems the Problem shape. 2xx bodies are checked against their zod
// schemas by the app itself (the serializer validates answers outside production: a mismatch
// would be a 500). GET /events is left out: a stream never ends under inject (its example test
// reads it over a socket).
import t from 'tap'
import fc from 'fast-check'
import nock from 'nock'
import { buildTestApp, cronAuth, N8N_TEST_ORIGIN, testUser } from './helpers/app.ts'
import { n8nWorkflow } from './helpers/n8n-nock.ts'
import { problemSchema } from '../src/schemas/problem.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

nock.disableNetConnect()
const h = await buildTestApp({ env: { RATE_LIMIT_MAX: '1000000' } })
t.teardown(async () => { nock.cleanAll(); nock.enableNetConnect(); await h.close() })

const urlOf = (req: unknown): string => (typeof req === 'string' ? req : (req as Request).url)
const idOf = (req: unknown): string => decodeURIComponent(/\/workflows\/([^/?]+)/.exec(urlOf(req))?.[1] ?? '')
let n8nSeq = 0
let lastCreated = ''
const held = new Map<string, { name: string, staticData: Record<string, unknown> | null }>()
nock(N8N_TEST_ORIGIN).persist()
  .get(/\/api\/v1\/executions/).reply(200, { data: [], nextCursor: null })
  .get(/\/api\/v1\/workflows\?/).reply(200, { data: [], nextCursor: null })
  .get(/\/api\/v1\/workflows\/[^/?]+$/).reply((req: unknown) => [200, n8nWorkflow(idOf(req), held.get(idOf(req)))])
  // The body matcher keeps what each deploy wrote (name prefix, staticData marker) for the ownership check.
  .post('/api/v1/workflows', (body: Record<string, unknown>) => {
    // nock may try this matcher on other POSTs too: only a create's body (with the marker) counts.
    if (typeof body?.name !== 'string' || !body.staticData) return true
    lastCreated = `fz-${++n8nSeq}`
    held.set(lastCreated, { name: String(body.name), staticData: (body.staticData ?? null) as Record<string, unknown> | null })
    return true
  }).reply(() => [200, n8nWorkflow(lastCreated, held.get(lastCreated))])
  .put(/\/api\/v1\/workflows\/[^/]+$/).reply((req: unknown) => [200, n8nWorkflow(idOf(req), held.get(idOf(req)))])
  .post(/\/api\/v1\/workflows\/[^/]+\/(activate|deactivate)$/).reply((req: unknown) => [200, n8nWorkflow(idOf(req), { ...held.get(idOf(req)), active: urlOf(req).endsWith('/activate') })])
  .delete(/\/api\/v1\/workflows\/[^/]+$/).reply((req: unknown) => [200, n8nWorkflow(idOf(req), held.get(idOf(req)))])

const spec = h.app.swagger() as Record<string, any>
const schemas: Record<string, any> = spec.components.schemas
const user = await testUser()
const created = await h.app.inject({ method: 'POST', url: '/workflows', headers: user.auth, payload: { name: 'fuzz target' } })
t.equal(created.statusCode, 201)
const ownId: string = created.json().id

type Json = any
/** A fast-check arbitrary of values valid for a JSON schema (the subset zod emits). */
function arb (s: Json, depth = 0): fc.Arbitrary<unknown> {
  if (s === undefined || s === true || (typeof s === 'object' && Object.keys(s).length === 0)) return depth > 2 ? fc.string({ maxLength: 8 }) : fc.jsonValue({ maxDepth: 2 })
  if (s.$ref) return arb(schemas[String(s.$ref).replace('#/components/schemas/', '')], depth)
  if (s.const !== undefined) return fc.constant(s.const)
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum)
  if (Array.isArray(s.anyOf)) return fc.oneof(...s.anyOf.map((x: Json) => arb(x, depth)))
  if (Array.isArray(s.oneOf)) return fc.oneof(...s.oneOf.map((x: Json) => arb(x, depth)))
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'null': return fc.constant(null)
    case 'boolean': return fc.boolean()
    case 'integer': return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 1000 })
    case 'number': return fc.double({ min: s.minimum ?? -1000, max: s.maximum ?? 1000, noNaN: true })
    case 'string': {
      if (s.format === 'uuid') return fc.oneof(fc.constant(ownId), fc.uuid())
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length <= (s.maxLength ?? 300))
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) })
    }
    case 'array': {
      if (Array.isArray(s.prefixItems)) return fc.tuple(...s.prefixItems.map((x: Json) => arb(x, depth + 1)))
      return fc.array(arb(s.items, depth + 1), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 3, 3) })
    }
    case 'object': {
      const props: Record<string, fc.Arbitrary<unknown>> = {}
      for (const [k, v] of Object.entries<Json>(s.properties ?? {})) props[k] = arb(v, depth + 1)
      const required: string[] = (s.required ?? []).filter((k: string) => k in props)
      const known = fc.record(props, { requiredKeys: required })
      if (Object.keys(props).length === 0 && depth < 2) return fc.dictionary(fc.string({ maxLength: 8 }), arb(s.additionalProperties, depth + 1), { maxKeys: 3 })
      return known
    }
    default: return fc.jsonValue({ maxDepth: 2 })
  }
}

/** Valid by the schema most of the time; junk (any JSON, or a mutated valid value) otherwise. */
const orJunk = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) })

interface Op { method: string, path: string, op: Json }
const ops: Op[] = []
for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
  for (const [method, op] of Object.entries<any>(item)) {
    if (op.operationId !== 'streamEvents') ops.push({ method: method.toUpperCase(), path, op })
  }
}

const request = fc.constantFrom(...ops).chain(({ method, path, op }) => {
  const params: Json[] = op.parameters ?? []
  const paramArbs: Record<string, fc.Arbitrary<unknown>> = {}
  for (const p of params) {
    const a = p.in === 'path' ? fc.oneof(fc.constant(ownId), fc.uuid(), fc.string({ maxLength: 12 })) : orJunk(arb(p.schema))
    paramArbs[`${p.in}:${p.name}`] = p.required ? a : fc.option(a, { nil: undefined })
  }
  const bodySchema = op.requestBody?.content?.['application/json']?.schema
  return fc.record({
    method: fc.constant(method),
    path: fc.constant(path),
    op: fc.constant(op),
    auth: fc.constantFrom('user', 'cron', 'none'),
    params: fc.record(paramArbs),
    body: bodySchema ? fc.option(orJunk(arb(bodySchema)), { nil: undefined, freq: 8 }) : fc.constant(undefined)
  })
})

const seen = { statuses: new Map<number, number>(), operations: new Set<string>() }

t.test(`${RUNS} generated requests: no 5xx, documented statuses, content types and problem shapes`, async (t) => {
  await fc.assert(fc.asyncProperty(request, async (r) => {
    let url = r.path
    const query = new URLSearchParams()
    const headers: Record<string, string> = r.auth === 'user' ? { ...user.auth } : r.auth === 'cron' ? { ...cronAuth } : {}
    for (const [key, value] of Object.entries(r.params)) {
      if (value === undefined) continue
      const [where, name] = key.split(':') as [string, string]
      const text = typeof value === 'string' ? value : JSON.stringify(value)
      if (where === 'path') url = url.replace(`{${name}}`, encodeURIComponent(text))
      else if (where === 'query') query.set(name, text)
      else if (where === 'header' && /^[\t\x20-\x7e]*$/.test(text)) headers[name] = text
    }
    const full = query.size > 0 ? `${url}?${query}` : url
    const res = await h.app.inject({
      method: r.method as 'GET',
      url: full,
      headers: r.body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(r.body === undefined ? {} : { payload: JSON.stringify(r.body) })
    })
    seen.statuses.set(res.statusCode, (seen.statuses.get(res.statusCode) ?? 0) + 1)
    seen.operations.add(r.op.operationId)
    const where = `${r.method} ${full} (${r.auth}) → ${res.statusCode} ${res.body.slice(0, 300)}`
    if (res.statusCode >= 500) throw new Error(`5xx: ${where}`)
    const documented = r.op.responses[String(res.statusCode)] ?? (res.statusCode >= 400 ? r.op.responses.default : undefined)
    if (!documented) throw new Error(`undocumented status: ${where}`)
    const type = String(res.headers['content-type'] ?? '').split(';')[0]
    const types = Object.keys(documented.content ?? {})
    if (res.statusCode !== 204 && res.statusCode !== 304 && !types.some((ct) => type === ct || (ct === 'text/plain' && type === 'text/plain'))) {
      throw new Error(`content type ${type}, documented ${types.join(', ')}: ${where}`)
    }
    if (res.statusCode >= 400) {
      const p = problemSchema.safeParse(res.json())
      if (!p.success || p.data.status !== res.statusCode) throw new Error(`not a Problem: ${where}`)
    }
  }), { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20250115) })
  t.comment(`statuses: ${JSON.stringify([...seen.statuses].sort((a, b) => a[0] - b[0]))}`)
  t.ok(seen.operations.size >= ops.length - 2, `operations reached: ${seen.operations.size} of ${ops.length}`)
  t.ok([...seen.statuses.keys()].some((s) => s < 300), `some answers were 2xx: ${JSON.stringify([...seen.statuses])}`)
  t.ok([...seen.statuses.keys()].some((s) => s === 400), 'some were validation problems')
  t.ok([...seen.statuses.keys()].some((s) => s === 401), 'some were unauthenticated')
})
