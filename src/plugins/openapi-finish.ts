// The last pass over the generated OpenAPI document: what the zod schemas cannot say by themselves.
// - Errors are served as application/problem+json (src/plugins/errors.ts): documented so, and every
//   operation gets a `default` problem answer for the statuses it does not list (405, 413, 415, …).
// - One component per shape: fastify-type-provider-zod emits every registered schema twice
//   (`X` for answers, `XInput` for requests); an `XInput` identical to `X` is dropped and its
//   references point at `X`.
// - Every response has a description; every operation exactly one tag.
// - Examples that work as they stand on a fresh start (Swagger UI's "Try it out" sends them).

type Json = Record<string, any>

const PROBLEM_REF = '#/components/schemas/Problem'
const PROBLEM_TYPE = 'application/problem+json'

/** Request examples per operationId: each one answers 2xx on a fresh start (test/openapi-examples.test.ts). */
export const operationExamples: Record<string, { body?: unknown, bodyOptional?: boolean }> = {
  createWorkflow: {
    body: {
      name: 'Hello webhook',
      description: 'Answers POST /webhook/hello in n8n',
      nodes: [{
        name: 'Webhook',
        type: 'n8n-nodes-base.webhook',
        typeVersion: 2,
        position: [0, 0],
        parameters: { path: 'hello', httpMethod: 'POST', responseMode: 'onReceived' }
      }],
      connections: {},
      settings: { executionOrder: 'v1' },
      active: false
    }
  },
  updateWorkflow: { body: { description: 'Changed from Swagger UI' } },
  syncMyWorkflows: { body: {}, bodyOptional: true },
  edgeFunctionCompat: { body: { action: 'sync_all_workflows' } },
  runCleanup: { body: { dry_run: true }, bodyOptional: true },
  runWorkflow: { body: { hello: 'from Swagger UI' }, bodyOptional: true }
}

const defaultDescriptions: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  304: 'Not modified (If-None-Match matched)'
}

function walk (value: unknown, fn: (obj: Json) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, fn)
  } else if (value !== null && typeof value === 'object') {
    fn(value as Json)
    for (const v of Object.values(value)) walk(v, fn)
  }
}

/** `XInput` → `X` wherever X has the same shape (references compared after the same renaming). */
function dedupeInputSchemas (doc: Json): void {
  const schemas: Json = doc.components?.schemas ?? {}
  const renamed = new Map<string, string>()
  const norm = (v: unknown): string => JSON.stringify(v, (k, x) => {
    if (k === '$ref' && typeof x === 'string') {
      const name = x.replace('#/components/schemas/', '')
      return `#/components/schemas/${renamed.get(name) ?? name.replace(/Input$/, '')}`
    }
    return x
  })
  for (let changed = true; changed;) {
    changed = false
    for (const name of Object.keys(schemas)) {
      if (!name.endsWith('Input') || renamed.has(name)) continue
      const base = name.slice(0, -'Input'.length)
      if (schemas[base] !== undefined && norm(schemas[name]) === norm(schemas[base])) {
        renamed.set(name, base)
        changed = true
      }
    }
  }
  for (const name of renamed.keys()) delete schemas[name]
  walk(doc, (o) => {
    if (typeof o.$ref === 'string') {
      const name = o.$ref.replace('#/components/schemas/', '')
      const to = renamed.get(name)
      if (to !== undefined) o.$ref = `#/components/schemas/${to}`
    }
  })
  // Components no request or answer uses (every registered schema is emitted for both sides).
  const used = new Set<string>()
  const mark = (v: unknown): void => walk(v, (o) => {
    if (typeof o.$ref !== 'string') return
    const name = o.$ref.replace('#/components/schemas/', '')
    if (used.has(name)) return
    used.add(name)
    mark(schemas[name])
  })
  mark(doc.paths)
  for (const name of Object.keys(schemas)) {
    if (!name.endsWith('Input')) continue
    const base = name.slice(0, -'Input'.length)
    if (!used.has(name)) {
      delete schemas[name]
    } else if (!used.has(base)) {
      // Only requests use this shape (e.g. with defaults, whose answer-side twin nobody returns): one name.
      schemas[base] = schemas[name]
      delete schemas[name]
      walk(doc, (o) => { if (o.$ref === `#/components/schemas/${name}`) o.$ref = `#/components/schemas/${base}` })
    }
  }
}

function finishOperation (op: Json): void {
  if (Array.isArray(op.tags) && op.tags.length > 1) op.tags = [op.tags[0]]
  const responses: Json = op.responses ?? {}
  for (const [code, res] of Object.entries<Json>(responses)) {
    if (res.description === undefined || res.description === 'Default Response') {
      res.description = defaultDescriptions[code] ?? `Status ${code}`
    }
    const content: Json | undefined = res.content
    const json = content?.['application/json']
    if (content !== undefined && Number(code) >= 400 && json?.schema?.$ref === PROBLEM_REF) {
      delete content['application/json']
      content[PROBLEM_TYPE] = json
    }
  }
  responses.default ??= {
    description: 'Any other error (e.g. 405 method not allowed, 413, 415), as a problem',
    content: { [PROBLEM_TYPE]: { schema: { $ref: PROBLEM_REF } } }
  }
  const example = operationExamples[op.operationId as string]
  if (example?.body !== undefined) {
    const media = op.requestBody?.content?.['application/json']
    if (media) media.example = example.body
  }
  if (example?.bodyOptional === true && op.requestBody) op.requestBody.required = false
}

export function finishOpenapi<T> (document: T): T {
  const doc = document as Json
  for (const item of Object.values<Json>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<Json>(item)) {
      if (['get', 'put', 'post', 'patch', 'delete', 'head', 'options'].includes(method)) finishOperation(op)
    }
  }
  dedupeInputSchemas(doc)
  return document
}
