import { setTimeout as sleep } from 'node:timers/promises'
import { inspect } from 'node:util'
import t from 'tap'
import nock from 'nock'
import { AppError } from '../../src/errors.ts'
import {
  N8nClient,
  N8nError,
  isN8nError,
  isN8nNotFound,
  networkCause,
  NO_API_KEY_MESSAGE
} from '../../src/services/n8n-client.ts'
import type { N8nCallInfo, N8nClientOptions, N8nWorkflowInput } from '../../src/services/n8n-client.ts'

const ORIGIN = 'http://n8n.test:5678'
const BASE = ORIGIN + '/api/v1'
const KEY = 'n8n_api_SUPER-secret-key-4f2a9c81'

nock.disableNetConnect()
t.afterEach(() => { nock.cleanAll() })
t.teardown(() => {
  nock.cleanAll()
  nock.enableNetConnect()
})

function client (opts: Partial<N8nClientOptions> = {}): N8nClient {
  return new N8nClient({
    baseUrl: BASE,
    apiKey: KEY,
    timeoutMs: 1000,
    retries: 3,
    retryBaseDelayMs: 1,
    maxRetryDelayMs: 20,
    ...opts
  })
}

/**
 * Interceptor scope that also asserts the auth + accept headers on every request
 * (and, with `noBody`, that no content-type is sent).
 */
function n8n (opts: { noBody?: boolean } = {}): nock.Scope {
  return nock(ORIGIN, {
    reqheaders: { 'x-n8n-api-key': KEY, accept: 'application/json' },
    ...(opts.noBody === true ? { badheaders: ['content-type'] } : {})
  })
}

/**
 * A reply whose status line arrives only after `ms`. nock 15's `.delay()` holds back the
 * body only (headers go out at once), and aborting fetch while nock is still writing the
 * body trips an assertion inside undici (an uncaught exception in the test process), so
 * timeouts are simulated by delaying the whole answer instead.
 */
function slowReply (ms: number, status: number, body: unknown): () => Promise<[number, unknown]> {
  return async () => {
    await sleep(ms)
    return [status, body]
  }
}

async function caught (p: Promise<unknown>): Promise<N8nError> {
  try {
    await p
  } catch (err) {
    if (err instanceof N8nError) return err
    throw err
  }
  throw new Error('expected a rejection')
}

function workflow (id: string | number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: `wf ${id}`,
    active: false,
    nodes: [{ id: 'n1', name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: {} }],
    connections: {},
    settings: { executionOrder: 'v1' },
    staticData: null,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-02T00:00:00.000Z',
    tags: [],
    ...extra
  }
}

function execution (id: string | number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    finished: true,
    mode: 'webhook',
    retryOf: null,
    retrySuccessId: null,
    status: 'success',
    startedAt: '2025-01-01T00:00:00.000Z',
    stoppedAt: '2025-01-01T00:00:01.000Z',
    workflowId: 'wf1',
    waitTill: null,
    ...extra
  }
}

const input: N8nWorkflowInput = {
  name: 'Orders',
  nodes: [{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'x' } }],
  connections: {},
  settings: { executionOrder: 'v1' },
  staticData: { owner: 'row-1' }
}

// ---------------------------------------------------------------------------
// Request shapes

t.test('listWorkflows sends the query and headers, normalises ids', async (t) => {
  const scope = n8n({ noBody: true })
    .get('/api/v1/workflows')
    .query({ active: 'true', name: 'Ord ers', tags: 'sync,prod', limit: '250', cursor: 'abc=' })
    .reply(200, { data: [workflow(7), workflow('x1', { versionId: 'v9' })], nextCursor: 'next' })
  const page = await client().listWorkflows({ active: true, name: 'Ord ers', tags: 'sync,prod', limit: 999, cursor: 'abc=' })
  t.equal(page.data.length, 2)
  t.equal(page.data[0]?.id, '7', 'numeric id becomes a string')
  t.equal(page.data[1]?.versionId, 'v9', 'unknown keys are kept')
  t.equal(page.nextCursor, 'next')
  t.ok(scope.isDone())
})

t.test('listWorkflows without a query hits /workflows exactly; missing nextCursor is null', async (t) => {
  const scope = n8n().get('/api/v1/workflows').reply(200, { data: [] })
  const page = await client().listWorkflows()
  t.strictSame(page, { data: [], nextCursor: null })
  t.ok(scope.isDone())
})

t.test('listWorkflows sends active=false and clamps limit to at least 1', async (t) => {
  const scope = n8n().get('/api/v1/workflows').query({ active: 'false', limit: '1' })
    .reply(200, { data: [], nextCursor: null })
  await client().listWorkflows({ active: false, limit: 0 })
  t.ok(scope.isDone())
})

t.test('iterateWorkflows follows nextCursor over 3 pages', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows').query({ tags: 'sync', limit: '2' })
    .reply(200, { data: [workflow('a'), workflow('b')], nextCursor: 'c1' })
    .get('/api/v1/workflows').query({ tags: 'sync', limit: '2', cursor: 'c1' })
    .reply(200, { data: [workflow('c'), workflow('d')], nextCursor: 'c2' })
    .get('/api/v1/workflows').query({ tags: 'sync', limit: '2', cursor: 'c2' })
    .reply(200, { data: [workflow('e')], nextCursor: null })
  const ids: string[] = []
  for await (const wf of client().iterateWorkflows({ tags: 'sync', limit: 2 })) ids.push(wf.id)
  t.strictSame(ids, ['a', 'b', 'c', 'd', 'e'])
  t.ok(scope.isDone())
})

t.test('iterateWorkflows stops on a repeated cursor instead of looping forever', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows').reply(200, { data: [workflow('a')], nextCursor: 'same' })
    .get('/api/v1/workflows').query({ cursor: 'same' }).reply(200, { data: [workflow('b')], nextCursor: 'same' })
  const ids: string[] = []
  const err = await caught((async () => {
    for await (const wf of client().iterateWorkflows()) ids.push(wf.id)
  })())
  t.equal(err.code, 'n8n_error')
  t.strictSame(ids, ['a', 'b'])
  t.ok(scope.isDone())
})

t.test('getWorkflow GETs /workflows/:id with the id encoded', async (t) => {
  const scope = n8n().get('/api/v1/workflows/a%2Fb').reply(200, workflow('a/b', { staticData: { k: 1 } }))
  const wf = await client().getWorkflow('a/b')
  t.equal(wf.id, 'a/b')
  t.equal(wf.name, 'wf a/b')
  t.strictSame(wf.staticData, { k: 1 })
  t.equal(wf.nodes[0]?.type, 'n8n-nodes-base.webhook')
  t.ok(scope.isDone())
})

t.test('invalid ids are refused before any request', async (t) => {
  const c = client()
  for (const id of ['', '.', '..']) {
    await t.rejects(c.getWorkflow(id), { code: 'validation_failed', status: 400 })
  }
  await t.rejects(c.getExecution('..'), { code: 'validation_failed' })
})

t.test('createWorkflow POSTs only the writable fields as JSON', async (t) => {
  let sent: unknown
  const scope = n8n()
    .matchHeader('content-type', 'application/json')
    .post('/api/v1/workflows', (body: unknown) => { sent = body; return true })
    .reply(200, workflow('new1', { name: 'Orders' }))
  const withExtras = { ...input, id: 'x', active: true, tags: [] } as N8nWorkflowInput
  const wf = await client().createWorkflow(withExtras)
  t.equal(wf.id, 'new1')
  t.strictSame(sent, {
    name: 'Orders',
    nodes: input.nodes,
    connections: {},
    settings: { executionOrder: 'v1' },
    staticData: { owner: 'row-1' }
  })
  t.ok(scope.isDone())
})

t.test('createWorkflow omits staticData when not given', async (t) => {
  let sent: unknown
  const scope = n8n()
    .post('/api/v1/workflows', (body: unknown) => { sent = body; return true })
    .reply(200, workflow('new2'))
  const { staticData: _omit, ...rest } = input
  await client().createWorkflow(rest)
  t.strictSame(Object.keys(sent as object).sort(), ['connections', 'name', 'nodes', 'settings'])
  t.ok(scope.isDone())
})

t.test('updateWorkflow PUTs the full body', async (t) => {
  let sent: unknown
  const scope = n8n()
    .matchHeader('content-type', 'application/json')
    .put('/api/v1/workflows/wf1', (body: unknown) => { sent = body; return true })
    .reply(200, workflow('wf1', { name: 'Orders' }))
  const wf = await client().updateWorkflow('wf1', input)
  t.equal(wf.name, 'Orders')
  t.strictSame(sent, input)
  t.ok(scope.isDone())
})

t.test('deleteWorkflow: 200 → deleted, 404 → already gone', async (t) => {
  const scope = n8n()
    .delete('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
    .delete('/api/v1/workflows/gone').reply(404, { message: 'Not Found' })
  const c = client()
  t.strictSame(await c.deleteWorkflow('wf1'), { deleted: true })
  t.strictSame(await c.deleteWorkflow('gone'), { deleted: false, reason: 'not_found' })
  t.ok(scope.isDone())
})

t.test('deleteWorkflow accepts an empty 204 answer', async (t) => {
  const scope = n8n().delete('/api/v1/workflows/wf1').reply(204)
  t.strictSame(await client().deleteWorkflow('wf1'), { deleted: true })
  t.ok(scope.isDone())
})

t.test('activate / deactivate POST without a body', async (t) => {
  const scope = n8n({ noBody: true })
    .post('/api/v1/workflows/wf1/activate', (body: unknown) => body === '' || body === undefined)
    .reply(200, workflow('wf1', { active: true }))
    .post('/api/v1/workflows/wf1/deactivate', (body: unknown) => body === '' || body === undefined)
    .reply(200, workflow('wf1', { active: false }))
  const c = client()
  t.equal((await c.activateWorkflow('wf1')).active, true)
  t.equal((await c.deactivateWorkflow('wf1')).active, false)
  t.ok(scope.isDone())
})

t.test('listExecutions sends the query and normalises numeric ids', async (t) => {
  const scope = n8n()
    .get('/api/v1/executions')
    .query({ workflowId: 'wf1', status: 'error', limit: '250', cursor: 'cur', includeData: 'false' })
    .reply(200, {
      data: [execution(42, { retryOf: 40, workflowId: 7, waitTill: undefined }), execution('41', { status: 'crashed' })],
      nextCursor: 'more'
    })
  const page = await client().listExecutions({ workflowId: 'wf1', status: 'error', limit: 1000, cursor: 'cur', includeData: false })
  t.equal(page.nextCursor, 'more')
  t.match(page.data[0], { id: '42', retryOf: '40', retrySuccessId: null, workflowId: '7', waitTill: null, finished: true })
  t.equal(page.data[1]?.status, 'crashed')
  t.ok(scope.isDone())
})

t.test('iterateExecutionPages yields 3 pages with their cursors', async (t) => {
  const scope = n8n()
    .get('/api/v1/executions').query({ workflowId: 'wf1', limit: '2' })
    .reply(200, { data: [execution(6), execution(5)], nextCursor: 'p2' })
    .get('/api/v1/executions').query({ workflowId: 'wf1', limit: '2', cursor: 'p2' })
    .reply(200, { data: [execution(4), execution(3)], nextCursor: 'p3' })
    .get('/api/v1/executions').query({ workflowId: 'wf1', limit: '2', cursor: 'p3' })
    .reply(200, { data: [execution(2)], nextCursor: null })
  const pages: Array<{ ids: string[], cursor: string | null, nextCursor: string | null }> = []
  for await (const page of client().iterateExecutionPages({ workflowId: 'wf1', limit: 2 })) {
    pages.push({ ids: page.data.map((e) => e.id), cursor: page.cursor, nextCursor: page.nextCursor })
  }
  t.strictSame(pages, [
    { ids: ['6', '5'], cursor: null, nextCursor: 'p2' },
    { ids: ['4', '3'], cursor: 'p2', nextCursor: 'p3' },
    { ids: ['2'], cursor: 'p3', nextCursor: null }
  ])
  t.ok(scope.isDone())
})

t.test('iterateExecutionPages resumes from a given cursor', async (t) => {
  const scope = n8n()
    .get('/api/v1/executions').query({ cursor: 'saved' })
    .reply(200, { data: [execution(1)], nextCursor: null })
  const cursors: Array<string | null> = []
  for await (const page of client().iterateExecutionPages({ cursor: 'saved' })) cursors.push(page.cursor)
  t.strictSame(cursors, ['saved'])
  t.ok(scope.isDone())
})

t.test('getExecution GETs /executions/:id (optionally with data)', async (t) => {
  const scope = n8n()
    .get('/api/v1/executions/42').reply(200, execution(42))
    .get('/api/v1/executions/43').query({ includeData: 'true' }).reply(200, execution(43, { data: { resultData: {} } }))
  const c = client()
  t.equal((await c.getExecution('42')).id, '42')
  const withData = await c.getExecution('43', { includeData: true })
  t.strictSame(withData.data, { resultData: {} })
  t.ok(scope.isDone())
})

t.test('no api key configured: n8n is not called, the error says N8N_API_KEY is not set', async (t) => {
  const scope = nock(ORIGIN).get(/.*/).reply(401, { message: "'X-N8N-API-KEY' header required" })
  const c = client({ apiKey: undefined })
  const err = await caught(c.getWorkflow('wf1'))
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.message, NO_API_KEY_MESSAGE)
  t.match(err.message, /^N8N_API_KEY is not set/)
  t.equal((await caught(c.createWorkflow(input))).message, NO_API_KEY_MESSAGE)
  t.equal(await c.ping(), false)
  t.notOk(scope.isDone(), 'no request was made')
  nock.cleanAll()
})

t.test('network errors name the address and the cause', async (t) => {
  n8n().get('/api/v1/workflows/wf1').times(2)
    .replyWithError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5678'), { code: 'ECONNREFUSED' }))
  const refused = await caught(client({ retries: 1 }).getWorkflow('wf1'))
  t.equal(refused.message, `n8n request GET /workflows/:id failed: connection refused at ${ORIGIN}`)
  n8n().get('/api/v1/workflows/wf2').replyWithError(Object.assign(new Error('getaddrinfo ENOTFOUND n8n.test'), { code: 'ENOTFOUND' }))
  t.match((await caught(client({ retries: 0 }).getWorkflow('wf2'))).message, /failed: host not found at http:\/\/n8n/)
  t.equal(networkCause(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) })), 'connection reset')
  t.equal(networkCause(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }) })), 'TLS error (CERT_HAS_EXPIRED)')
  t.equal(networkCause(new Error('socket hang up')), 'network error')
})

t.test('a real refused connection (nothing listening) names it', async (t) => {
  nock.enableNetConnect('127.0.0.1')
  t.teardown(() => { nock.disableNetConnect() })
  const srv = (await import('node:net')).createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise((resolve) => srv.close(resolve))
  const c = new N8nClient({ baseUrl: `http://127.0.0.1:${port}/api/v1`, apiKey: KEY, retries: 0 })
  t.equal((await caught(c.getWorkflow('x'))).message, `n8n request GET /workflows/:id failed: connection refused at http://127.0.0.1:${port}`)
})

// ---------------------------------------------------------------------------
// ping

t.test('ping resolves true on 200 and false otherwise, without retries or throwing', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows').query({ limit: '1' }).reply(200, { data: [], nextCursor: null })
    .get('/api/v1/workflows').query({ limit: '1' }).reply(503, 'down')
    .get('/api/v1/workflows').query({ limit: '1' }).reply(401, { message: 'unauthorized' })
    .get('/api/v1/workflows').query({ limit: '1' }).replyWithError('ECONNREFUSED')
    .get('/api/v1/workflows').query({ limit: '1' }).reply(slowReply(300, 200, { data: [] }))
  const c = client({ timeoutMs: 50 })
  t.equal(await c.ping(), true)
  t.equal(await c.ping(), false, '503')
  t.equal(await c.ping(), false, '401')
  t.equal(await c.ping(), false, 'network error')
  t.equal(await c.ping(), false, 'timeout')
  t.ok(scope.isDone(), 'exactly one request per ping')
})

// ---------------------------------------------------------------------------
// Retries

t.test('429 with Retry-After (seconds) is honoured, capped at maxRetryDelayMs', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows/wf1').reply(429, { message: 'slow down' }, { 'Retry-After': '1' })
    .get('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
  const started = Date.now()
  const wf = await client({ retryBaseDelayMs: 0, maxRetryDelayMs: 150 }).getWorkflow('wf1')
  const elapsed = Date.now() - started
  t.equal(wf.id, 'wf1')
  t.ok(elapsed >= 140, `waited the capped Retry-After (${elapsed} ms)`)
  t.ok(elapsed < 900, `did not wait the full second (${elapsed} ms)`)
  t.ok(scope.isDone())
})

t.test('Retry-After as an HTTP date is honoured', async (t) => {
  const when = new Date(Date.now() + 5000).toUTCString()
  const scope = n8n()
    .get('/api/v1/executions/1').reply(503, 'busy', { 'Retry-After': when })
    .get('/api/v1/executions/1').reply(200, execution(1))
  const started = Date.now()
  await client({ retryBaseDelayMs: 0, maxRetryDelayMs: 120 }).getExecution('1')
  const elapsed = Date.now() - started
  t.ok(elapsed >= 110 && elapsed < 900, `waited ~120 ms (${elapsed} ms)`)
  t.ok(scope.isDone())
})

t.test('without Retry-After the backoff stays within the jitter bound', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows/wf1').reply(503)
    .get('/api/v1/workflows/wf1').reply(503)
    .get('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
  const started = Date.now()
  await client({ retryBaseDelayMs: 0, maxRetryDelayMs: 5000 }).getWorkflow('wf1')
  t.ok(Date.now() - started < 200)
  t.ok(scope.isDone())
})

t.test('503 then success', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows').reply(503, 'Service Unavailable')
    .get('/api/v1/workflows').reply(200, { data: [workflow('a')], nextCursor: null })
  const page = await client().listWorkflows()
  t.equal(page.data[0]?.id, 'a')
  t.ok(scope.isDone())
})

t.test('PUT, DELETE, activate and deactivate are retried', async (t) => {
  const scope = n8n()
    .put('/api/v1/workflows/wf1').reply(502)
    .put('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
    .delete('/api/v1/workflows/wf1').reply(504)
    .delete('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
    .post('/api/v1/workflows/wf1/activate').replyWithError('socket hang up')
    .post('/api/v1/workflows/wf1/activate').reply(200, workflow('wf1', { active: true }))
    .post('/api/v1/workflows/wf1/deactivate').reply(500)
    .post('/api/v1/workflows/wf1/deactivate').reply(200, workflow('wf1'))
  const c = client()
  await c.updateWorkflow('wf1', input)
  await c.deleteWorkflow('wf1')
  await c.activateWorkflow('wf1')
  await c.deactivateWorkflow('wf1')
  t.ok(scope.isDone())
})

t.test('503 exhausted → n8n_unavailable after 1 + retries attempts', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').times(4).reply(503, { message: 'down' })
  const err = await caught(client({ retries: 3 }).getWorkflow('wf1'))
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.status, 503)
  t.equal(err.n8nStatus, 503)
  t.equal(err.n8nMessage, 'down')
  t.ok(scope.isDone())
})

t.test('500 exhausted → n8n_error 502', async (t) => {
  const scope = n8n().get('/api/v1/executions/9').times(3).reply(500, { message: 'boom' })
  const err = await caught(client({ retries: 2 }).getExecution('9'))
  t.ok(err instanceof AppError)
  t.equal(err.code, 'n8n_error')
  t.equal(err.status, 502)
  t.equal(err.n8nStatus, 500)
  t.ok(scope.isDone())
})

t.test('other 5xx (501) is not retried and maps to n8n_error', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').once().reply(501)
  await t.rejects(client().getWorkflow('wf1'), { code: 'n8n_error', status: 502, n8nStatus: 501 })
  t.ok(scope.isDone())
})

t.test('429 exhausted → n8n_unavailable with a Retry-After header', async (t) => {
  const scope = n8n().get('/api/v1/workflows').times(2).reply(429, { message: 'rate' }, { 'Retry-After': '30' })
  const err = await caught(client({ retries: 1, maxRetryDelayMs: 5 }).listWorkflows())
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.status, 503)
  t.equal(err.n8nStatus, 429)
  t.strictSame(err.headers, { 'Retry-After': '30' })
  t.ok(scope.isDone())
})

t.test('429 without Retry-After → no headers', async (t) => {
  const scope = n8n().get('/api/v1/workflows').reply(429)
  const err = await caught(client({ retries: 0 }).listWorkflows())
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.headers, undefined)
  t.ok(scope.isDone())
})

t.test('timeout → n8n_unavailable', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').reply(slowReply(300, 200, workflow('wf1')))
  const started = Date.now()
  const err = await caught(client({ timeoutMs: 100, retries: 0 }).getWorkflow('wf1'))
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.status, 503)
  t.equal(err.n8nStatus, null)
  t.match(err.message, /timed out after 100 ms/)
  t.ok(Date.now() - started < 280, 'gave up at the timeout')
  t.ok(scope.isDone())
})

t.test('timeout is per attempt and retried', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows/wf1').reply(slowReply(300, 200, workflow('wf1')))
    .get('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
  const wf = await client({ timeoutMs: 100, retries: 1 }).getWorkflow('wf1')
  t.equal(wf.id, 'wf1')
  t.ok(scope.isDone())
})

t.test('a body that stalls past the timeout → n8n_unavailable', async (t) => {
  // Headers arrive, then the body never completes: the per-attempt signal must cover body reading.
  let calls = 0
  const stalling: typeof fetch = async (_input, init) => {
    calls++
    const signal = init?.signal
    const body = new ReadableStream<Uint8Array>({
      start (controller) {
        controller.enqueue(new TextEncoder().encode('{"id":'))
        signal?.addEventListener('abort', () => { controller.error(signal.reason) }, { once: true })
      }
    })
    return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } })
  }
  const err = await caught(client({ fetch: stalling, timeoutMs: 50, retries: 1 }).getWorkflow('wf1'))
  t.equal(err.code, 'n8n_unavailable')
  t.match(err.message, /timed out/)
  t.equal(calls, 2, 'retried once')
})

t.test('network error → n8n_unavailable after retries', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').times(3)
    .replyWithError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5678'), { code: 'ECONNREFUSED' }))
  const err = await caught(client({ retries: 2 }).getWorkflow('wf1'))
  t.equal(err.code, 'n8n_unavailable')
  t.equal(err.status, 503)
  t.equal(err.n8nStatus, null)
  t.ok(err.cause !== undefined, 'keeps the cause for logs')
  t.ok(scope.isDone())
})

t.test('POST create is never retried', async (t) => {
  t.test('503', async (t) => {
    const scope = n8n().post('/api/v1/workflows').once().reply(503)
    const err = await caught(client({ retries: 3 }).createWorkflow(input))
    t.equal(err.code, 'n8n_unavailable')
    t.ok(scope.isDone())
    t.equal(nock.pendingMocks().length, 0)
  })
  t.test('network error', async (t) => {
    let calls = 0
    const scope = n8n().post('/api/v1/workflows').times(2).replyWithError('socket hang up')
    scope.on('request', () => { calls++ })
    const err = await caught(client({ retries: 3 }).createWorkflow(input))
    t.equal(err.code, 'n8n_unavailable')
    t.equal(calls, 1, 'exactly one request')
    t.notOk(scope.isDone(), 'the second interceptor was never used')
  })
  t.test('429', async (t) => {
    let calls = 0
    const scope = n8n().post('/api/v1/workflows').times(2).reply(429, '', { 'Retry-After': '2' })
    scope.on('request', () => { calls++ })
    const err = await caught(client({ retries: 3 }).createWorkflow(input))
    t.equal(err.code, 'n8n_unavailable')
    t.strictSame(err.headers, { 'Retry-After': '2' })
    t.equal(calls, 1)
  })
})

// ---------------------------------------------------------------------------
// Error mapping

t.test('malformed JSON → n8n_error (not retried)', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').once()
    .reply(200, '{"id": "wf1", "name":', { 'content-type': 'application/json' })
  const err = await caught(client().getWorkflow('wf1'))
  t.equal(err.code, 'n8n_error')
  t.equal(err.status, 502)
  t.equal(err.n8nStatus, 200)
  t.match(err.message, /not valid JSON/)
  t.ok(scope.isDone())
})

t.test('wrong shape → n8n_error naming the path', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows').reply(200, { data: [{ id: 'a', name: 5 }] })
    .get('/api/v1/executions/1').reply(200, [])
    .post('/api/v1/workflows/wf1/activate').reply(200, '')
  const c = client()
  const e1 = await caught(c.listWorkflows())
  t.equal(e1.code, 'n8n_error')
  t.match(e1.message, /unexpected response shape.*data\.0\./)
  await t.rejects(c.getExecution('1'), { code: 'n8n_error', status: 502 })
  await t.rejects(c.activateWorkflow('wf1'), { code: 'n8n_error', status: 502 }, 'empty body where JSON was expected')
  t.ok(scope.isDone())
})

t.test('activate 400 "no trigger" → n8n_rejected 422 with n8n\'s message', async (t) => {
  const msg = 'Workflow has no node to start the workflow - at least one trigger, poller or webhook node is required'
  const scope = n8n().post('/api/v1/workflows/wf1/activate').once().reply(400, { message: msg })
  const err = await caught(client().activateWorkflow('wf1'))
  t.equal(err.code, 'n8n_rejected')
  t.equal(err.status, 422)
  t.equal(err.n8nStatus, 400)
  t.ok(err.message.includes(msg))
  t.ok(scope.isDone())
})

t.test('other 400 → n8n_rejected with n8n\'s own message', async (t) => {
  const msg = 'request/body must NOT have additional properties'
  const scope = n8n().post('/api/v1/workflows').reply(400, { message: msg })
  const err = await caught(client().createWorkflow(input))
  t.equal(err.code, 'n8n_rejected')
  t.equal(err.status, 422)
  t.equal(err.message, msg)
  t.ok(scope.isDone())
})

t.test('400 without a JSON message still maps to n8n_rejected', async (t) => {
  const scope = n8n().put('/api/v1/workflows/wf1').reply(400, '<html>bad</html>')
  const err = await caught(client().updateWorkflow('wf1', input))
  t.equal(err.code, 'n8n_rejected')
  t.match(err.message, /HTTP 400/)
  t.ok(scope.isDone())
})

t.test('404 → not_found marked as n8n\'s', async (t) => {
  const scope = n8n().get('/api/v1/workflows/nope').once().reply(404, { message: 'Not Found' })
  const err = await caught(client().getWorkflow('nope'))
  t.equal(err.code, 'not_found')
  t.equal(err.status, 404)
  t.ok(isN8nNotFound(err))
  t.ok(isN8nError(err))
  t.notOk(isN8nNotFound(new AppError('not_found', 'our own row is missing')))
  t.notOk(isN8nNotFound(new Error('x')))
  t.ok(scope.isDone())
})

t.test('404 on a collection route → n8n_error (misconfigured base URL), not not_found', async (t) => {
  const scope = n8n().get('/api/v1/workflows').reply(404, { message: 'Not Found' })
  const err = await caught(client().listWorkflows())
  t.equal(err.code, 'n8n_error')
  t.equal(err.status, 502)
  t.equal(err.n8nStatus, 404)
  t.notOk(isN8nNotFound(err))
  t.match(err.message, /base URL/)
  t.ok(scope.isDone())
})

t.test('401/403 → n8n_error; the API key never leaks', async (t) => {
  const scope = n8n()
    .get('/api/v1/workflows/wf1').reply(401, { message: 'unauthorized' })
    .get('/api/v1/workflows/wf1').reply(403, { message: `forbidden for key ${KEY}` })
  const c = client()
  for (const status of [401, 403]) {
    const err = await caught(c.getWorkflow('wf1'))
    t.equal(err.code, 'n8n_error')
    t.equal(err.status, 502)
    t.equal(err.n8nStatus, status)
    t.match(err.message, /rejected the service's API key/)
    t.notOk(err.message.includes(KEY))
    t.notOk(JSON.stringify(err).includes(KEY))
    t.notOk(inspect(err, { depth: 10, showHidden: true }).includes(KEY))
  }
  t.ok(scope.isDone())
})

t.test('an n8n message that echoes the key is redacted', async (t) => {
  const scope = n8n()
    .post('/api/v1/workflows').reply(400, { message: `bad header ${KEY}` })
    .get('/api/v1/workflows/wf1').reply(500, { message: `crash ${KEY}` })
  const c = client({ retries: 0 })
  for (const p of [c.createWorkflow(input), c.getWorkflow('wf1')]) {
    const err = await caught(p)
    t.notOk(JSON.stringify(err).includes(KEY))
    t.notOk(err.message.includes(KEY))
    t.notOk(inspect(err, { depth: 10, showHidden: true }).includes(KEY))
  }
  t.ok(scope.isDone())
})

t.test('network errors do not leak the key either', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').replyWithError('connect ECONNREFUSED')
  const err = await caught(client({ retries: 0 }).getWorkflow('wf1'))
  t.notOk(JSON.stringify(err).includes(KEY))
  t.notOk(inspect(err, { depth: 10, showHidden: true }).includes(KEY))
  t.ok(scope.isDone())
})

t.test('constructor refuses a key fetch would echo in its own error', async (t) => {
  const bad = 'secret-with\nnewline'
  const err = t.throws(() => new N8nClient({ baseUrl: BASE, apiKey: bad }))
  t.ok(err instanceof Error && !err.message.includes('secret'))
  t.throws(() => new N8nClient({ baseUrl: 'not a url' }))
  t.throws(() => new N8nClient({ baseUrl: 'ftp://x/api/v1' }))
  const withCreds = t.throws(() => new N8nClient({ baseUrl: 'http://user:pw-secret@n8n.test/api/v1' }))
  t.ok(withCreds instanceof Error && !withCreds.message.includes('pw-secret'))
})

t.test('redirects are not followed (the key must not travel elsewhere)', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').reply(302, '', { Location: 'http://evil.test/steal' })
  const err = await caught(client().getWorkflow('wf1'))
  t.equal(err.code, 'n8n_error')
  t.equal(err.n8nStatus, 302)
  t.ok(scope.isDone())
})

t.test('trailing slash in baseUrl is tolerated', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
  await client({ baseUrl: BASE + '/' }).getWorkflow('wf1')
  t.ok(scope.isDone())
})

t.test('a custom fetch is used when given', async (t) => {
  const seen: string[] = []
  const fake: typeof fetch = async (input, init) => {
    seen.push(`${init?.method ?? 'GET'} ${String(input)}`)
    return new Response(JSON.stringify(workflow('wf1')), { status: 200 })
  }
  await client({ fetch: fake }).getWorkflow('wf1')
  t.strictSame(seen, [`GET ${BASE}/workflows/wf1`])
})

// ---------------------------------------------------------------------------
// onCall

t.test('onCall reports templated routes, statuses and outcomes per attempt', async (t) => {
  const calls: N8nCallInfo[] = []
  const scope = n8n()
    .get('/api/v1/workflows/abc123').reply(503)
    .get('/api/v1/workflows/abc123').reply(200, workflow('abc123'))
    .post('/api/v1/workflows/abc123/activate').reply(400, { message: 'no trigger node' })
    .post('/api/v1/workflows/abc123/deactivate').reply(200, workflow('abc123'))
    .get('/api/v1/executions/77').replyWithError('reset')
    .get('/api/v1/executions').query(true).reply(200, { data: [], nextCursor: null })
    .post('/api/v1/workflows').reply(200, workflow('abc123'))
    .put('/api/v1/workflows/abc123').reply(200, workflow('abc123'))
    .delete('/api/v1/workflows/abc123').reply(404)
  const c = client({ retries: 1, onCall: (info) => { calls.push(info) } })
  await c.getWorkflow('abc123')
  await t.rejects(c.activateWorkflow('abc123'))
  await c.deactivateWorkflow('abc123')
  scope.get('/api/v1/executions/77').reply(200, execution(77))
  await c.getExecution('77')
  await c.listExecutions({ workflowId: 'abc123' })
  await c.createWorkflow(input)
  await c.updateWorkflow('abc123', input)
  await c.deleteWorkflow('abc123')

  t.strictSame(calls.map(({ method, route, status, outcome }) => ({ method, route, status, outcome })), [
    { method: 'GET', route: '/workflows/:id', status: 503, outcome: 'retry' },
    { method: 'GET', route: '/workflows/:id', status: 200, outcome: 'ok' },
    { method: 'POST', route: '/workflows/:id/activate', status: 400, outcome: 'error' },
    { method: 'POST', route: '/workflows/:id/deactivate', status: 200, outcome: 'ok' },
    { method: 'GET', route: '/executions/:id', status: null, outcome: 'retry' },
    { method: 'GET', route: '/executions/:id', status: 200, outcome: 'ok' },
    { method: 'GET', route: '/executions', status: 200, outcome: 'ok' },
    { method: 'POST', route: '/workflows', status: 200, outcome: 'ok' },
    { method: 'PUT', route: '/workflows/:id', status: 200, outcome: 'ok' },
    { method: 'DELETE', route: '/workflows/:id', status: 404, outcome: 'error' }
  ])
  for (const info of calls) {
    t.ok(typeof info.durationMs === 'number' && info.durationMs >= 0)
    t.notOk(/abc123|77/.test(info.route), 'no ids in routes')
  }
  t.notOk(JSON.stringify(calls).includes(KEY))
  t.ok(scope.isDone())
})

t.test('a throwing onCall does not break calls', async (t) => {
  const scope = n8n().get('/api/v1/workflows/wf1').reply(200, workflow('wf1'))
  const c = client({ onCall: () => { throw new Error('metrics down') } })
  t.equal((await c.getWorkflow('wf1')).id, 'wf1')
  t.ok(scope.isDone())
})
