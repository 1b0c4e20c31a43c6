// A simulated n8n for the sync benchmark: a small node:http server (not nock) serving the public
// API v1 shapes the sync engine uses, with a configurable latency per request. It runs in its own
// process (fork it; it answers `{type: 'ready', port}`), so its CPU does not count as the service's,
// and is driven over IPC (see `SimRequest`; `SimClient` below wraps it for the parent).
//
// Behaves like n8n where the engine depends on it (../shared/reference/n8n-public-api.md):
// - one instance-wide id sequence assigned at start; ids are numeric strings;
// - GET /executions: newest first, `workflowId`, `status` (`error` also matches `crashed`;
//   `running` lists ONLY the active runs, which every other listing hides), `limit` default 100,
//   max 250 (400 above), cursor = base64 of {"lastId","limit"} meaning `id < lastId`, and
//   `nextCursor` only when more records follow (n8n counts the rest);
// - an unknown workflowId answers 200 with an empty list; GET /executions/{id} 404 when absent;
// - GET /workflows with `name` (substring), `active`, `limit`, offset cursor, full workflow
//   objects with `staticData`; GET /workflows/{id}; POST /workflows/{id}/activate|deactivate;
// - 401 without X-N8N-API-KEY.
// - POST /workflows (a new id; name, nodes, staticData as sent), PUT /workflows/{id}, DELETE
//   /workflows/{id} (deploys and cleanup, for the chaos script);
// Requests are counted by route (the engine's calls, split by query shape).
//
// Fault mode (`{op: 'faults', rate}`, for bench/chaos.ts): that share of requests fails, each
// with one of: 500, 429 with `Retry-After: 1`, a timeout (no answer at all: the client's own
// timeout ends it) or a connection reset. A mutation (create, update, delete, activate) that
// fails is applied first half of the time: the answer is lost, the change is not, which is
// the case that produces duplicates if a client retries blindly.
import http from 'node:http'
import type { ChildProcess } from 'node:child_process'
import { fork } from 'node:child_process'

// ---- protocol ---------------------------------------------------------------------------------

export interface SimWorkflow { id: string, name: string, active: boolean, rowId?: string, userId?: string }

export interface GenerateSpec {
  /** n8n workflow ids receiving executions. */
  workflowIds: string[]
  /** Executions per workflow (all interleaved in one shuffled sequence, unless `interleave: false`). */
  perWorkflow: number
  /** false: each workflow's executions get consecutive ids, workflow after workflow (default true). */
  interleave?: boolean
  /** Share of `error` (default 0.1), `crashed` (0.005), `canceled` (0.005); the rest `success`. */
  errorRate?: number
  crashedRate?: number
  canceledRate?: number
  /** Share left running: hidden from the list, listed by status=running (default 0). */
  runningRate?: number
  seed?: number
}

export type SimRequest =
  | { op: 'configure', latencyMs: number }
  | { op: 'addWorkflows', workflows: SimWorkflow[] }
  | { op: 'generate', spec: GenerateSpec }
  | { op: 'finishRunning', status?: string }
  | { op: 'counters' }
  | { op: 'resetCounters' }
  | { op: 'truth', workflowIds: string[] }
  | { op: 'stats' }
  | { op: 'faults', rate: number, kinds?: FaultKind[], seed?: number }
  | { op: 'workflowsDump' }

export type FaultKind = '500' | '429' | 'timeout' | 'reset'
/** What the chaos script inspects: every workflow with its staticData marker. */
export interface SimWorkflowDump { id: string, name: string, active: boolean, rowId: string | null }

export interface GenerateResult { count: number, firstId: number, lastId: number, running: number }
export interface SimStats { executions: number, running: number, workflows: number, maxId: number }
/** Per workflow: [execution_count, successful, failed] by the engine's counting rule. */
export type Truth = Record<string, [number, number, number]>

// ---- state ------------------------------------------------------------------------------------

const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])
const BASE_TIME = Date.parse('2025-01-01T00:00:00Z')

interface Exec {
  id: number
  wf: string
  status: string
  startedAt: number
  stoppedAt: number | null
  /** Active in n8n (running): hidden from every list but status=running. */
  active: boolean
  /** Serialised list item (built once; rebuilt when the execution changes). */
  json: string
}

interface Wf extends SimWorkflow { json: string, body?: Record<string, unknown> }

const execs: Exec[] = [] // ascending ids
const byWorkflow = new Map<string, Exec[]>() // ascending ids
const running = new Set<Exec>()
const workflows = new Map<string, Wf>()
const workflowOrder: Wf[] = []
let seq = 0
let latencyMs = 0
let counters: Record<string, number> = {}
let faultRate = 0
let faultKinds: FaultKind[] = ['500', '429', 'timeout', 'reset']
let faultRand = rng(7)
let wfSeq = 0
const held = new Set<http.ServerResponse>()

function execJson (e: Exec): string {
  return JSON.stringify({
    id: String(e.id),
    finished: e.status === 'success',
    mode: 'webhook',
    retryOf: null,
    retrySuccessId: null,
    status: e.status,
    startedAt: new Date(e.startedAt).toISOString(),
    stoppedAt: e.stoppedAt === null ? null : new Date(e.stoppedAt).toISOString(),
    workflowId: e.wf,
    waitTill: null
  })
}

function wfJson (w: Wf): string {
  if (w.body) {
    return JSON.stringify({
      ...w.body,
      id: w.id,
      name: w.name,
      active: w.active,
      isArchived: false,
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:00.000Z',
      versionId: '00000000-0000-0000-0000-000000000000',
      triggerCount: 1,
      tags: []
    })
  }
  return JSON.stringify({
    id: w.id,
    name: w.name,
    active: w.active,
    isArchived: false,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    nodes: [{ id: 'n1', name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], webhookId: w.id, parameters: { path: w.id, httpMethod: 'POST' } }],
    connections: {},
    settings: { executionOrder: 'v1' },
    staticData: w.rowId === undefined ? null : { workflow_sync: { row_id: w.rowId, user_id: w.userId } },
    meta: null,
    pinData: null,
    versionId: '00000000-0000-0000-0000-000000000000',
    triggerCount: 1,
    tags: []
  })
}

/** Deterministic PRNG (mulberry32). */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function generate (spec: GenerateSpec): GenerateResult {
  const rand = rng(spec.seed ?? 1)
  const order: string[] = []
  for (const id of spec.workflowIds) for (let i = 0; i < spec.perWorkflow; i++) order.push(id)
  for (let i = spec.interleave === false ? 0 : order.length - 1; i > 0; i--) { // Fisher-Yates: ids interleave across workflows
    const j = Math.floor(rand() * (i + 1))
    const x = order[i] as string
    order[i] = order[j] as string
    order[j] = x
  }
  const errorRate = spec.errorRate ?? 0.1
  const crashedRate = spec.crashedRate ?? 0.005
  const canceledRate = spec.canceledRate ?? 0.005
  const runningRate = spec.runningRate ?? 0
  const firstId = seq + 1
  let nRunning = 0
  for (const wf of order) {
    const id = ++seq
    const r = rand()
    let status = 'success'
    if (r < runningRate) status = 'running'
    else if (r < runningRate + errorRate) status = 'error'
    else if (r < runningRate + errorRate + crashedRate) status = 'crashed'
    else if (r < runningRate + errorRate + crashedRate + canceledRate) status = 'canceled'
    const startedAt = BASE_TIME + id * 100
    const e: Exec = { id, wf, status, startedAt, stoppedAt: FINAL.has(status) ? startedAt + 50 : null, active: status === 'running', json: '' }
    e.json = execJson(e)
    execs.push(e)
    let list = byWorkflow.get(wf)
    if (!list) byWorkflow.set(wf, list = [])
    list.push(e)
    if (e.active) { running.add(e); nRunning++ }
  }
  return { count: order.length, firstId, lastId: seq, running: nRunning }
}

function truth (ids: string[]): Truth {
  const out: Truth = {}
  for (const id of ids) {
    let n = 0; let ok = 0; let failed = 0
    for (const e of byWorkflow.get(id) ?? []) {
      if (!FINAL.has(e.status)) continue
      n++
      if (e.status === 'success') ok++
      else if (e.status === 'error' || e.status === 'crashed') failed++
    }
    out[id] = [n, ok, failed]
  }
  return out
}

// ---- HTTP -------------------------------------------------------------------------------------

type Reply = [number, string]
const notFound: Reply = [404, '{"message":"Not Found"}']

function bad (message: string): Reply {
  return [400, JSON.stringify({ message })]
}

/** Index of the last element with id < lastId in an ascending array (-1: none). */
function below (list: Exec[], lastId: number): number {
  let lo = 0
  let hi = list.length // first index with id >= lastId
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((list[mid] as Exec).id < lastId) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

function listExecutions (q: URLSearchParams): Reply {
  let limit = 100
  let lastId = Number.MAX_SAFE_INTEGER
  const cursor = q.get('cursor')
  if (cursor) {
    try {
      const c = JSON.parse(Buffer.from(cursor, 'base64').toString('utf8')) as { lastId?: unknown, limit?: unknown }
      lastId = Number(c.lastId)
      limit = Number(c.limit)
      if (!Number.isInteger(lastId) || !Number.isInteger(limit)) throw new Error('bad')
    } catch {
      return bad('An invalid cursor was provided')
    }
  } else if (q.has('limit')) {
    limit = Number(q.get('limit'))
    if (!Number.isInteger(limit) || limit < 1) return bad('request/query/limit must be >= 1')
  }
  if (limit > 250) return bad('request/query/limit must be <= 250')
  const status = q.get('status')
  if (status !== null && !['canceled', 'crashed', 'error', 'new', 'running', 'success', 'unknown', 'waiting'].includes(status)) {
    return bad('request/query/status must be equal to one of the allowed values')
  }
  const workflowId = q.get('workflowId')
  let source: Exec[]
  if (status === 'running') source = [...running].sort((a, b) => a.id - b.id)
  else source = workflowId === null ? execs : byWorkflow.get(workflowId) ?? []
  const match = (e: Exec): boolean => {
    if (workflowId !== null && e.wf !== workflowId) return false
    if (status === 'running') return e.active
    if (e.active) return false
    if (status === null) return true
    return status === 'error' ? e.status === 'error' || e.status === 'crashed' : e.status === status
  }
  const out: string[] = []
  let i = below(source, lastId)
  let last: Exec | undefined
  for (; i >= 0 && out.length < limit; i--) {
    const e = source[i] as Exec
    if (!match(e)) continue
    out.push(e.json)
    last = e
  }
  let more = false
  for (; i >= 0; i--) { // n8n counts the records after the page; one is enough here
    if (match(source[i] as Exec)) { more = true; break }
  }
  const nextCursor = more && last ? Buffer.from(JSON.stringify({ lastId: String(last.id), limit })).toString('base64') : null
  return [200, `{"data":[${out.join(',')}],"nextCursor":${nextCursor === null ? 'null' : JSON.stringify(nextCursor)}}`]
}

function listWorkflows (q: URLSearchParams): Reply {
  let limit = 100
  let offset = 0
  const cursor = q.get('cursor')
  if (cursor) {
    try {
      const c = JSON.parse(Buffer.from(cursor, 'base64').toString('utf8')) as { offset?: unknown, limit?: unknown }
      offset = Number(c.offset)
      limit = Number(c.limit)
      if (!Number.isInteger(offset) || !Number.isInteger(limit)) throw new Error('bad')
    } catch {
      return bad('An invalid cursor was provided')
    }
  } else if (q.has('limit')) {
    limit = Number(q.get('limit'))
  }
  if (!Number.isInteger(limit) || limit < 1) return bad('request/query/limit must be >= 1')
  if (limit > 250) return bad('request/query/limit must be <= 250')
  const name = q.get('name')
  const active = q.get('active')
  const all = workflowOrder.filter((w) => (name === null || w.name.includes(name)) &&
    (active === null || String(w.active) === active))
  const page = all.slice(offset, offset + limit)
  const nextCursor = offset + limit < all.length
    ? Buffer.from(JSON.stringify({ offset: offset + limit, limit })).toString('base64')
    : null
  return [200, `{"data":[${page.map((w) => w.json).join(',')}],"nextCursor":${nextCursor === null ? 'null' : JSON.stringify(nextCursor)}}`]
}

function removeWorkflow (id: string): boolean {
  const w = workflows.get(id)
  if (!w) return false
  workflows.delete(id)
  workflowOrder.splice(workflowOrder.indexOf(w), 1)
  return true
}

function parseBody (text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown
    return v && typeof v === 'object' ? v as Record<string, unknown> : null
  } catch {
    return null
  }
}

function route (method: string, path: string, q: URLSearchParams, text = ''): [string, Reply] {
  if (method === 'POST' && path === '/workflows') {
    const body = parseBody(text)
    if (!body || typeof body.name !== 'string') return ['POST /workflows', bad('request/body must have required property \'name\'')]
    const wf: Wf = { id: `c${(++wfSeq).toString(36).padStart(15, '0')}`, name: body.name, active: false, json: '', body: { ...body, active: undefined } }
    wf.json = wfJson(wf)
    workflows.set(wf.id, wf)
    workflowOrder.push(wf)
    return ['POST /workflows', [200, wf.json]]
  }
  const mw = /^\/workflows\/([^/]+)$/.exec(path)
  if (mw && (method === 'PUT' || method === 'DELETE')) {
    const id = decodeURIComponent(mw[1] ?? '')
    const w = workflows.get(id)
    if (!w) return [`${method} /workflows/:id`, notFound]
    if (method === 'DELETE') {
      removeWorkflow(id)
      return ['DELETE /workflows/:id', [200, w.json]]
    }
    const body = parseBody(text)
    if (!body || typeof body.name !== 'string') return ['PUT /workflows/:id', bad('request/body must have required property \'name\'')]
    const before = w.body ?? (JSON.parse(w.json) as Record<string, unknown>)
    w.name = body.name
    w.body = { ...before, ...body, staticData: body.staticData ?? before.staticData, active: undefined }
    w.json = wfJson(w)
    return ['PUT /workflows/:id', [200, w.json]]
  }
  if (method === 'GET' && path === '/executions') {
    const key = q.get('status') === 'running'
      ? 'GET /executions?status=running'
      : q.has('workflowId')
        ? 'GET /executions?workflowId'
        : q.has('cursor')
          ? 'GET /executions (instance, cursor)'
          : 'GET /executions (instance, first page)'
    return [key, listExecutions(q)]
  }
  let m = /^\/executions\/([^/]+)$/.exec(path)
  if (method === 'GET' && m) {
    const id = Number(m[1])
    const e = Number.isInteger(id) && id >= 1 && id <= execs.length ? execs[id - 1] : undefined
    return ['GET /executions/:id', e ? [200, e.json] : notFound]
  }
  if (method === 'GET' && path === '/workflows') return ['GET /workflows', listWorkflows(q)]
  m = /^\/workflows\/([^/]+)$/.exec(path)
  if (method === 'GET' && m) {
    const w = workflows.get(decodeURIComponent(m[1] ?? ''))
    return ['GET /workflows/:id', w ? [200, w.json] : notFound]
  }
  m = /^\/workflows\/([^/]+)\/(activate|deactivate)$/.exec(path)
  if (method === 'POST' && m) {
    const w = workflows.get(decodeURIComponent(m[1] ?? ''))
    if (!w) return [`POST /workflows/:id/${m[2]}`, notFound]
    w.active = m[2] === 'activate'
    w.json = wfJson(w)
    return [`POST /workflows/:id/${m[2]}`, [200, w.json]]
  }
  return [`${method} (other)`, notFound]
}

const MUTATION = /^(POST|PUT|DELETE) /

function handle (req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://sim')
  const path = url.pathname.replace(/^\/api\/v1/, '')
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => { chunks.push(c) })
  // The latency is added once the request is in, like a network round trip plus n8n's own time.
  req.on('end', () => {
    const go = (): void => { answer(req, res, path, url.searchParams, Buffer.concat(chunks).toString('utf8')) }
    if (latencyMs > 0) setTimeout(go, latencyMs)
    else go()
  })
}

function answer (req: http.IncomingMessage, res: http.ServerResponse, path: string, q: URLSearchParams, text: string): void {
  const method = req.method ?? 'GET'
  let key: string
  let reply: Reply
  const fault: FaultKind | null = faultRate > 0 && faultRand() < faultRate ? faultKinds[Math.floor(faultRand() * faultKinds.length)] ?? '500' : null
  if (!req.headers['x-n8n-api-key']) {
    key = 'unauthorised'
    reply = [401, '{"message":"\'X-N8N-API-KEY\' header required"}']
  } else if (fault && !(MUTATION.test(`${method} `) && faultRand() < 0.5)) {
    // fails before anything happened
    key = `fault ${fault}`
    reply = [0, '']
  } else {
    [key, reply] = route(method, path, q, text)
  }
  counters[key] = (counters[key] ?? 0) + 1
  if (fault && !key.startsWith('unauthorised')) {
    counters[`fault ${fault} (total)`] = (counters[`fault ${fault} (total)`] ?? 0) + 1
    if (fault === 'reset') { req.socket.destroy(); return }
    if (fault === 'timeout') {
      held.add(res)
      res.on('close', () => { held.delete(res) })
      return
    }
    const body = fault === '429' ? '{"message":"Too many requests"}' : '{"message":"Internal error (simulated)"}'
    res.writeHead(fault === '429' ? 429 : 500, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(fault === '429' ? { 'retry-after': '1' } : {}) })
    res.end(body)
    return
  }
  res.writeHead(reply[0], { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(reply[1]) })
  res.end(reply[1])
}

function handleIpc (msg: SimRequest): unknown {
  switch (msg.op) {
    case 'configure':
      latencyMs = msg.latencyMs
      return { latencyMs }
    case 'addWorkflows':
      for (const w of msg.workflows) {
        const wf: Wf = { ...w, json: '' }
        wf.json = wfJson(wf)
        workflows.set(w.id, wf)
        workflowOrder.push(wf)
      }
      return { workflows: workflows.size }
    case 'generate':
      return generate(msg.spec)
    case 'finishRunning': {
      const n = running.size
      for (const e of running) {
        e.status = msg.status ?? 'success'
        e.active = false
        e.stoppedAt = e.startedAt + 1000
        e.json = execJson(e)
      }
      running.clear()
      return { finished: n }
    }
    case 'counters':
      return counters
    case 'resetCounters':
      counters = {}
      return {}
    case 'truth':
      return truth(msg.workflowIds)
    case 'stats':
      return { executions: execs.length, running: running.size, workflows: workflows.size, maxId: seq } satisfies SimStats
    case 'faults':
      faultRate = msg.rate
      if (msg.kinds) faultKinds = msg.kinds
      faultRand = rng(msg.seed ?? 7)
      if (msg.rate === 0) { for (const r of held) r.destroy(); held.clear() }
      return { rate: faultRate, kinds: faultKinds }
    case 'workflowsDump':
      return workflowOrder.map((w) => {
        const sd = (w.body?.staticData ?? null) as Record<string, { row_id?: unknown }> | null
        const rowId = w.body ? sd?.workflow_sync?.row_id : w.rowId
        return { id: w.id, name: w.name, active: w.active, rowId: typeof rowId === 'string' ? rowId : null }
      }) satisfies SimWorkflowDump[]
  }
}

// ---- parent side ------------------------------------------------------------------------------

export class SimClient {
  readonly child: ChildProcess
  readonly port: number
  #next = 0
  readonly #pending = new Map<number, (v: unknown) => void>()

  private constructor (child: ChildProcess, port: number) {
    this.child = child
    this.port = port
    child.on('message', (m: { type?: string, id?: number, result?: unknown }) => {
      if (m.type !== 'reply' || m.id === undefined) return
      const resolve = this.#pending.get(m.id)
      this.#pending.delete(m.id)
      resolve?.(m.result)
    })
  }

  static async start (): Promise<SimClient> {
    const child = fork(new URL(import.meta.url).pathname, ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--disable-warning=ExperimentalWarning'] })
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { type?: string, port?: number }) => { if (m.type === 'ready' && m.port) resolve(m.port) })
      child.once('exit', (code) => reject(new Error(`sim-n8n exited with ${code}`)))
    })
    return new SimClient(child, port)
  }

  get baseUrl (): string {
    return `http://127.0.0.1:${this.port}/api/v1`
  }

  request<T> (msg: SimRequest): Promise<T> {
    const id = ++this.#next
    return new Promise<T>((resolve) => {
      this.#pending.set(id, resolve as (v: unknown) => void)
      this.child.send({ type: 'request', id, msg })
    })
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGTERM')
    await exited
  }
}

// ---- child side -------------------------------------------------------------------------------

if (process.argv.includes('--serve')) {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handle)
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address()
    process.send?.({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : 0 })
  })
  process.on('message', (m: { type?: string, id?: number, msg?: SimRequest }) => {
    if (m.type !== 'request' || m.msg === undefined) return
    process.send?.({ type: 'reply', id: m.id, result: handleIpc(m.msg) })
  })
  process.on('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
}
