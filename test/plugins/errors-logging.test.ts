// How the error handler LOGS what it answers. Found by the end-to-end suite against a real n8n:
// fastify-type-provider-zod's isResponseSerializationError() only checks for a `method` property,
// which every N8nError has, so each n8n refusal (e.g. "no trigger node" on activate → 422) was
// logged at level error as "unhandled error", with its stack.
import t from 'tap'
import Fastify from 'fastify'
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { z } from 'zod'
import errorsPlugin from '../../src/plugins/errors.ts'
import { N8nError } from '../../src/services/n8n-client.ts'

async function appWithLogs (): Promise<{ app: ReturnType<typeof Fastify>, lines: Array<Record<string, any>> }> {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (l: string) => { lines.push(JSON.parse(l)) } } } })
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(errorsPlugin)
  const info = { method: 'POST', route: '/workflows/:id/activate' }
  app.get('/rejected', async () => {
    throw new N8nError('n8n_rejected', 'n8n cannot activate the workflow: has no trigger node', { ...info, n8nStatus: 400 })
  })
  app.get('/unavailable', async () => {
    throw new N8nError('n8n_unavailable', 'n8n is unavailable (HTTP 503 for POST /workflows/:id/activate)', { ...info, n8nStatus: 503 })
  })
  app.get('/bug', async () => { throw new Error('a real bug') })
  app.get('/bad-response', { schema: { response: { 200: z.object({ n: z.number() }) } } }, async () => ({ n: 'not a number' }) as never)
  await app.ready()
  return { app, lines }
}

const errorsFor = (lines: Array<Record<string, any>>, reqId: string): Array<Record<string, any>> =>
  lines.filter((l) => l.reqId === reqId && l.level >= 50)

t.test('an n8n refusal (422) is an answer, not an unhandled error', async (t) => {
  const { app, lines } = await appWithLogs()
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/rejected' })
  t.equal(res.statusCode, 422)
  t.equal(res.json().code, 'n8n_rejected')
  t.same(errorsFor(lines, res.json().requestId), [], 'nothing logged at level error')
})

t.test('n8n unavailable (503) is a warning about the dependency', async (t) => {
  const { app, lines } = await appWithLogs()
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/unavailable' })
  t.equal(res.statusCode, 503)
  const reqId = res.json().requestId
  t.same(errorsFor(lines, reqId), [])
  t.ok(lines.some((l) => l.reqId === reqId && l.level === 40 && l.msg === 'dependency unavailable' && l.code === 'n8n_unavailable'))
})

t.test('a real bug and a response that breaks its schema are still logged as errors', async (t) => {
  const { app, lines } = await appWithLogs()
  t.teardown(() => app.close())
  const bug = await app.inject({ method: 'GET', url: '/bug' })
  t.equal(bug.statusCode, 500)
  t.match(errorsFor(lines, bug.json().requestId), [{ msg: 'unhandled error', err: { message: 'a real bug' } }])
  const bad = await app.inject({ method: 'GET', url: '/bad-response' })
  t.equal(bad.statusCode, 500)
  t.notMatch(bad.body, /not a number/, 'the broken answer is not sent')
  const reqId = bad.json().requestId
  t.match(errorsFor(lines, reqId), [{ msg: 'unhandled error', err: { type: 'ResponseSerializationError' } }])
})
