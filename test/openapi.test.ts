import { readFile } from 'node:fs/promises'
import t from 'tap'
import SwaggerParser from '@apidevtools/swagger-parser'
import { generateOpenapi, OPENAPI_PATH } from '../scripts/openapi.ts'

// Generated once for the file (each generation boots an app on an embedded database).
const generated = await generateOpenapi()

t.test('the committed openapi/openapi.json is what the code generates', async (t) => {
  const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '')
  t.ok(committed === generated, 'openapi/openapi.json is stale: run `npm run openapi` and commit it')
})

t.test('the spec validates as OpenAPI 3 and documents every route fully', async (t) => {
  const spec = JSON.parse(generated)
  t.match(spec.openapi, /^3\./)
  await SwaggerParser.validate(structuredClone(spec))
  t.ok(spec.components.securitySchemes.bearerAuth, 'bearerAuth scheme')
  const operationIds = new Set<string>()
  for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const where = `${method.toUpperCase()} ${path}`
      t.ok(op.operationId, `${where} has an operationId`)
      t.notOk(operationIds.has(op.operationId), `${where} operationId is unique`)
      operationIds.add(op.operationId)
      t.ok(Array.isArray(op.tags) && op.tags.length > 0, `${where} has tags`)
      t.ok(Array.isArray(op.security), `${where} declares security`)
      const codes = Object.keys(op.responses ?? {})
      t.ok(codes.some((c) => c.startsWith('2')), `${where} documents a success answer`)
      if (op.security.length > 0) {
        t.ok(codes.includes('401'), `${where} documents 401`)
        t.ok(codes.includes('429'), `${where} documents 429`)
      }
    }
  }
  t.ok(operationIds.has('listWorkflows') && operationIds.has('createWorkflow'), 'workflow routes are in the spec')
})

t.test('the spec says what the server enforces (issue 11, item 4)', async (t) => {
  const spec = JSON.parse(generated)
  const schemas: Record<string, any> = spec.components.schemas
  const ops: Array<[string, any]> = []
  for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
    for (const [method, op] of Object.entries<any>(item)) ops.push([`${method.toUpperCase()} ${path}`, op])
  }
  t.ok(ops.length >= 20, `every operation is checked (${ops.length})`)
  let errorResponses = 0
  for (const [where, op] of ops) {
    t.equal(op.tags.length, 1, `${where} has exactly one tag`)
    t.ok(spec.tags.some((tag: { name: string }) => tag.name === op.tags[0]), `${where}: its tag is declared`)
    for (const [code, res] of Object.entries<any>(op.responses)) {
      t.ok(typeof res.description === 'string' && res.description !== '' && res.description !== 'Default Response', `${where} ${code} has a description`)
      if (code !== 'default' && Number(code) < 400) continue
      // /ready's 503 is its readiness body (application/json), like its 200.
      if (where === 'GET /ready' && code === '503') continue
      errorResponses++
      t.same(Object.keys(res.content ?? {}), ['application/problem+json'], `${where} ${code} is application/problem+json`)
      t.equal(res.content?.['application/problem+json']?.schema?.$ref, '#/components/schemas/Problem', `${where} ${code} is a Problem`)
    }
    t.ok(op.responses.default, `${where} documents other errors (default)`)
  }
  t.ok(errorResponses > 100, `error responses checked: ${errorResponses}`)

  // One schema per shape.
  for (const name of Object.keys(schemas)) {
    t.notOk(name.endsWith('Input'), `no …Input twin: ${name}`)
  }
  t.ok(schemas.Workflow && schemas.CreateWorkflow && schemas.UpdateWorkflow && schemas.Problem)

  t.equal(schemas.UpdateWorkflow.minProperties, 1, 'PATCH needs at least one field')
  const patch = spec.paths['/workflows/{id}'].patch
  const ifMatch = patch.parameters.find((p: any) => p.name === 'if-match')
  const ifMatchRe = new RegExp(ifMatch.schema.pattern)
  t.ok(ifMatchRe.test('"3"') && ifMatchRe.test('W/"3"') && ifMatchRe.test('*'), 'If-Match: a quoted version (or *)')
  t.notOk(ifMatchRe.test('3') || ifMatchRe.test('latest'), 'If-Match: not a bare number or a word')
  t.same(schemas.EdgeFunctionRequest.properties.action.enum, ['sync_all_workflows', 'cleanup_workflows'], 'action is an enum')

  const cursors: string[] = []
  for (const [where, op] of ops) {
    for (const p of op.parameters ?? []) {
      if (p.in !== 'query' || p.name !== 'cursor') continue
      cursors.push(where)
      t.match(p.description, /opaque/i, `${where} cursor is described as an opaque token`)
      t.ok(p.schema.pattern && p.schema.maxLength, `${where} cursor has a pattern and a maximum length`)
    }
  }
  t.ok(cursors.length >= 3, `cursors checked: ${cursors.join(', ')}`)
  t.equal(spec.paths['/sync'].post.requestBody.required, false, 'POST /sync takes no body as well')
})
