// The typed client's types, generated from the committed spec by openapi-typescript.
// `npm run openapi` writes both (spec, then types); test/client.test.ts fails when either is stale.
import { readFile } from 'node:fs/promises'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import { OPENAPI_PATH } from './openapi.ts'

export const CLIENT_TYPES_PATH = new URL('../client/schema.d.ts', import.meta.url).pathname

/** The types for a spec (default: the committed openapi/openapi.json). */
export async function generateClientTypes (spec?: string): Promise<string> {
  const text = spec ?? await readFile(OPENAPI_PATH, 'utf8')
  const ast = await openapiTS(JSON.parse(text), { silent: true })
  return `${COMMENT_HEADER}// Source: openapi/openapi.json. Regenerate with \`npm run openapi\`.\n\n${astToString(ast)}`
}
