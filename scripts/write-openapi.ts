// `npm run openapi`: writes openapi/openapi.json from the code.
import { writeFile } from 'node:fs/promises'
import { generateOpenapi, OPENAPI_PATH } from './openapi.ts'

await writeFile(OPENAPI_PATH, await generateOpenapi())
console.log(`wrote ${OPENAPI_PATH}`)
