// `npm run openapi`: writes openapi/openapi.json from the code, then the typed client's types
// (client/schema.d.ts) from that spec.
import { writeFile } from 'node:fs/promises'
import { generateOpenapi, OPENAPI_PATH } from './openapi.ts'
import { CLIENT_TYPES_PATH, generateClientTypes } from './client-types.ts'

const spec = await generateOpenapi()
await writeFile(OPENAPI_PATH, spec)
console.log(`wrote ${OPENAPI_PATH}`)
await writeFile(CLIENT_TYPES_PATH, await generateClientTypes(spec))
console.log(`wrote ${CLIENT_TYPES_PATH}`)
