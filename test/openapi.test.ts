import { readFile } from 'node:fs/promises'
import t from 'tap'
import SwaggerParser from '@apidevtools/swagger-parser'
import { generateOpenapi, OPENAPI_PATH } from '../scripts/openapi.ts'

t.test('the committed openapi/openapi.json is what the code generates', async (t) => {
  const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '')
  const generated = await generateOpenapi()
  t.ok(committed === generated, 'openapi/openapi.json is stale: run `npm run openapi` and commit it')
})

t.test('the spec validates as OpenAPI 3 and documents every route fully', async (t) => {
  const spec = JSON.parse(await generateOpenapi())
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
