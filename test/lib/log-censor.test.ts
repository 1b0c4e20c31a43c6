import { Writable } from 'node:stream'
import t from 'tap'
import fc from 'fast-check'
import pino from 'pino'
import { CENSORED, censorSecrets, SECRET_KEYS } from '../../src/lib/log-censor.ts'
import { loggerOptions } from '../../src/app.ts'
import { testConfig } from '../helpers/app.ts'

const SECRET = 'sk-live-0123456789abcdef'

/** A logger built from the service's own settings, writing its lines into `lines`. */
function capture (): { log: pino.Logger, lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const options = loggerOptions(testConfig({ LOG_LEVEL: 'info' })) as pino.LoggerOptions
  return { log: pino(options, stream), lines }
}

t.test('through the service\'s logger: every path the old redact list named is censored', async (t) => {
  // The paths of the pino `redact` list this replaced, each as a line would carry it.
  const fields: Array<Record<string, unknown>> = [
    { req: { headers: { authorization: SECRET, cookie: SECRET, 'x-n8n-api-key': SECRET, 'idempotency-key': SECRET, apikey: SECRET } } },
    { headers: { authorization: SECRET, 'x-n8n-api-key': SECRET } },
    { authorization: SECRET, apiKey: SECRET, api_key: SECRET, apikey: SECRET, token: SECRET, password: SECRET, accessToken: SECRET },
    { N8N_API_KEY: SECRET, CRON_SECRET: SECRET, SUPABASE_JWT_SECRET: SECRET, SUPABASE_SERVICE_ROLE_KEY: SECRET, SUPABASE_ANON_KEY: SECRET, DATABASE_URL: SECRET },
    { serviceRoleKey: SECRET, anonKey: SECRET },
    { config: { N8N_API_KEY: SECRET, CRON_SECRET: SECRET, SUPABASE_JWT_SECRET: SECRET, SUPABASE_SERVICE_ROLE_KEY: SECRET, SUPABASE_ANON_KEY: SECRET, DATABASE_URL: SECRET } },
    { client: { apiKey: SECRET, api_key: SECRET, apikey: SECRET, token: SECRET, password: SECRET, accessToken: SECRET, serviceRoleKey: SECRET, anonKey: SECRET } }
  ]
  const { log, lines } = capture()
  for (const f of fields) log.info(f, 'a line')
  t.equal(lines.length, fields.length)
  for (const [i, line] of lines.entries()) {
    t.notOk(line.includes(SECRET), `line ${i} holds no secret`)
    t.ok(line.includes(CENSORED), `line ${i} says where one was`)
    t.equal(JSON.parse(line).msg, 'a line')
  }
  t.equal(JSON.parse(lines[0]!).req.headers.authorization, CENSORED)
  t.equal(JSON.parse(lines[5]!).config.DATABASE_URL, CENSORED)
})

t.test('an error\'s own fields are censored, and it is still printed as an error', async (t) => {
  const { log, lines } = capture()
  const err = Object.assign(new Error('n8n refused'), { apiKey: SECRET, status: 401 })
  log.error({ err }, 'n8n call failed')
  const line = JSON.parse(lines[0]!)
  t.equal(line.err.apiKey, CENSORED)
  t.equal(line.err.status, 401)
  t.equal(line.err.message, 'n8n refused')
  t.equal(line.err.type, 'Error')
  t.match(line.err.stack, /n8n refused/)
  t.equal(err.apiKey, SECRET, 'the caller\'s error is left as it was')
})

t.test('a line with nothing to censor is the same object; class instances are not walked', async (t) => {
  const plain = { route: '/me', status: 200, nested: { a: 1, b: { c: 'x' } } }
  t.equal(censorSecrets(plain), plain, 'no copy')
  class Request { headers = { authorization: SECRET } }
  const withInstance = { req: new Request() }
  t.equal(censorSecrets(withInstance), withInstance, 'a serializer reduces it; its fields are not searched')
  t.equal(censorSecrets('text'), 'text')
  t.equal(censorSecrets(null), null)
})

t.test('property: no secret key within three levels of plain objects keeps its value; the input is unchanged', async (t) => {
  const secretKey = fc.constantFrom(...SECRET_KEYS)
  const key = fc.oneof(fc.string({ maxLength: 6 }), secretKey)
  const leaf = fc.oneof(fc.constant(SECRET), fc.integer(), fc.boolean(), fc.string({ maxLength: 4 }))
  const tree = fc.letrec((tie) => ({
    node: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, leaf, tie('node')), { maxKeys: 4 })
  })).node
  let checked = 0
  fc.assert(fc.property(tree, (input) => {
    const before = JSON.stringify(input)
    const out = censorSecrets(input) as Record<string, unknown>
    t.equal(JSON.stringify(input), before)
    const walk = (o: unknown, depth: number): void => {
      if (o === null || typeof o !== 'object' || depth > 3) return
      for (const [k, v] of Object.entries(o)) {
        if (SECRET_KEYS.has(k)) {
          checked++
          if (v !== undefined && v !== CENSORED) throw new Error(`${k} at depth ${depth} kept ${JSON.stringify(v)}`)
        } else {
          walk(v, depth + 1)
        }
      }
    }
    walk(out, 1)
  }), { numRuns: 500 })
  t.ok(checked > 100, `${checked} secret keys met`)
})
