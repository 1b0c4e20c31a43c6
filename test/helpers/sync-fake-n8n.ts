// A stateful fake of the parts of n8n's public API the sync engine uses, served through nock.
// It behaves like n8n where it matters: one instance-wide id sequence assigned at start, running
// executions hidden from the list (listed only with status=running, which old versions reject),
// newest-first cursor pages of at most 250, `status=error` matching crashed too, unknown
// workflowId → empty list, workflow 404s, and deletions that vanish at once.
import nock from 'nock'

export const N8N_ORIGIN = 'http://n8n.test'
export const N8N_BASE = `${N8N_ORIGIN}/api/v1`

export interface FakeExecution {
  id: number
  workflowId: string
  status: string
  mode: string
  startedAt: string
  stoppedAt: string | null
  /** Active in n8n: hidden from the plain list. */
  active: boolean
}

export interface FakeWorkflow {
  id: string
  name: string
  active: boolean
  /** Served as n8n's staticData (the service's ownership marker lives here). */
  staticData?: Record<string, unknown> | null
}

export interface Call {
  method: string
  path: string
  query: URLSearchParams
}

type Reply = [number, unknown, Record<string, string>?]
export interface Fault {
  /** Which request; return true to answer it with `reply`. */
  match(call: Call): boolean
  reply(call: Call): Reply | Promise<Reply>
  /** How many times (default: forever). */
  times?: number
}

const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])

export class FakeN8n {
  readonly workflows = new Map<string, FakeWorkflow>()
  readonly executions = new Map<number, FakeExecution>()
  readonly calls: Call[] = []
  readonly faults: Fault[] = []
  /** false: behave like n8n < 1.113 (status=running → 400). */
  runningFilterSupported = true
  #seq = 0
  #clock = Date.parse('2025-01-01T00:00:00Z')

  addWorkflow (id: string, name: string, active = false, staticData: Record<string, unknown> | null = null): FakeWorkflow {
    const wf = { id, name, active, staticData }
    this.workflows.set(id, wf)
    return wf
  }

  /** Starts an execution (id assigned now). Final status: finished at once; otherwise stays as given. */
  start (workflowId: string, status = 'running', opts: { active?: boolean } = {}): number {
    const id = ++this.#seq
    this.#clock += 1000
    const at = new Date(this.#clock).toISOString()
    this.executions.set(id, {
      id,
      workflowId,
      status,
      mode: 'webhook',
      startedAt: at,
      stoppedAt: FINAL.has(status) ? at : null,
      active: opts.active ?? status === 'running'
    })
    return id
  }

  runMany (workflowId: string, n: number, status: string | ((i: number) => string)): number[] {
    const ids: number[] = []
    for (let i = 0; i < n; i++) ids.push(this.start(workflowId, typeof status === 'string' ? status : status(i)))
    return ids
  }

  finish (id: number, status: string): void {
    const e = this.executions.get(id)
    if (!e) throw new Error(`no execution ${id}`)
    this.#clock += 1000
    e.status = status
    e.active = false
    if (FINAL.has(status)) e.stoppedAt = new Date(this.#clock).toISOString()
  }

  /** A waiting execution resumed: active (hidden) again under the same id. */
  resume (id: number): void {
    const e = this.executions.get(id)
    if (!e) throw new Error(`no execution ${id}`)
    e.status = 'running'
    e.active = true
  }

  remove (id: number): void {
    this.executions.delete(id)
  }

  /** n8n's own truth for one workflow, by the engine's counting rule. */
  truth (workflowId: string): { execution_count: number, successful_executions: number, failed_executions: number } {
    let count = 0
    let ok = 0
    let failed = 0
    for (const e of this.executions.values()) {
      if (e.workflowId !== workflowId || !FINAL.has(e.status)) continue
      count++
      if (e.status === 'success') ok++
      if (e.status === 'error' || e.status === 'crashed') failed++
    }
    return { execution_count: count, successful_executions: ok, failed_executions: failed }
  }

  executionCalls (workflowId?: string): Call[] {
    return this.calls.filter((c) => c.method === 'GET' && c.path === '/executions' &&
      (workflowId === undefined ? true : c.query.get('workflowId') === workflowId))
  }

  resetCalls (): void {
    this.calls.length = 0
  }

  /** Serves every request from the state until nock is cleaned. */
  intercept (): nock.Scope {
    const handler = (req: Request) => this.handle(req)
    return nock(N8N_ORIGIN).persist()
      .get(() => true).reply(handler)
      .post(() => true).reply(handler)
  }

  /**
   * Interceptors for exactly these requests and no others (each used once): `scope.done()`
   * then proves every expected call happened, and an unexpected call finds no interceptor.
   */
  expectExactly (matchers: Array<(path: string) => boolean>): nock.Scope {
    const scope = nock(N8N_ORIGIN)
    const handler = (req: Request) => this.handle(req)
    for (const m of matchers) scope.get((p: string) => m(p)).reply(handler)
    return scope
  }

  async handle (req: Request): Promise<Reply> {
    const url = new URL(req.url)
    const path = url.pathname.replace(/^\/api\/v1/, '')
    const call: Call = { method: req.method, path, query: url.searchParams }
    this.calls.push(call)
    for (let i = 0; i < this.faults.length; i++) {
      const f = this.faults[i]
      if (!f || !f.match(call)) continue
      if (f.times !== undefined) {
        f.times--
        if (f.times <= 0) this.faults.splice(i, 1)
      }
      return await f.reply(call)
    }
    return this.route(call)
  }

  route (call: Call): Reply {
    const { method, path, query } = call
    if (method === 'GET' && path === '/executions') return this.#listExecutions(query)
    let m = /^\/executions\/([^/]+)$/.exec(path)
    if (method === 'GET' && m) {
      const e = this.executions.get(Number(m[1]))
      return e ? [200, this.#exec(e)] : [404, { message: 'Not Found' }]
    }
    if (method === 'GET' && path === '/workflows') return this.#listWorkflows(query)
    m = /^\/workflows\/([^/]+)$/.exec(path)
    if (method === 'GET' && m) {
      const wf = this.workflows.get(decodeURIComponent(m[1] ?? ''))
      return wf ? [200, this.#wf(wf)] : [404, { message: 'Not Found' }]
    }
    m = /^\/workflows\/([^/]+)\/(activate|deactivate)$/.exec(path)
    if (method === 'POST' && m) {
      const wf = this.workflows.get(decodeURIComponent(m[1] ?? ''))
      if (!wf) return [404, { message: 'Not Found' }]
      wf.active = m[2] === 'activate'
      return [200, this.#wf(wf)]
    }
    return [404, { message: 'Not Found' }]
  }

  #listExecutions (q: URLSearchParams): Reply {
    const limit = Number(q.get('limit') ?? 100)
    if (limit > 250) return [400, { message: 'request/query/limit must be <= 250' }]
    let lastId = Infinity
    const cursor = q.get('cursor')
    if (cursor) {
      try {
        lastId = Number((JSON.parse(Buffer.from(cursor, 'base64').toString()) as { lastId: string }).lastId)
      } catch {
        return [400, { message: 'An invalid cursor was provided' }]
      }
    }
    const status = q.get('status')
    if (status === 'running' && !this.runningFilterSupported) {
      return [400, { message: 'request/query/status must be equal to one of the allowed values: error, success, waiting' }]
    }
    const workflowId = q.get('workflowId')
    const all = [...this.executions.values()]
      .filter((e) => e.id < lastId)
      .filter((e) => workflowId === null || e.workflowId === workflowId)
      .filter((e) => status === 'running' ? e.active : !e.active)
      .filter((e) => status === null || status === 'running'
        ? true
        : status === 'error' ? e.status === 'error' || e.status === 'crashed' : e.status === status)
      .sort((a, b) => b.id - a.id)
    const data = all.slice(0, limit)
    const last = data.at(-1)
    const nextCursor = all.length > limit && last
      ? Buffer.from(JSON.stringify({ lastId: String(last.id), limit })).toString('base64')
      : null
    return [200, { data: data.map((e) => this.#exec(e)), nextCursor }]
  }

  #listWorkflows (q: URLSearchParams): Reply {
    const limit = Number(q.get('limit') ?? 100)
    const name = q.get('name')
    let offset = 0
    const cursor = q.get('cursor')
    if (cursor) offset = Number((JSON.parse(Buffer.from(cursor, 'base64').toString()) as { offset: number }).offset)
    const all = [...this.workflows.values()].filter((w) => name === null || w.name.includes(name))
    const data = all.slice(offset, offset + limit)
    const nextCursor = offset + limit < all.length
      ? Buffer.from(JSON.stringify({ offset: offset + limit, limit })).toString('base64')
      : null
    return [200, { data: data.map((w) => this.#wf(w)), nextCursor }]
  }

  #exec (e: FakeExecution): Record<string, unknown> {
    return {
      id: String(e.id),
      finished: e.status === 'success',
      mode: e.mode,
      retryOf: null,
      retrySuccessId: null,
      status: e.status,
      startedAt: e.startedAt,
      stoppedAt: e.stoppedAt,
      workflowId: e.workflowId,
      waitTill: null
    }
  }

  #wf (w: FakeWorkflow): Record<string, unknown> {
    return {
      id: w.id,
      name: w.name,
      active: w.active,
      nodes: [],
      connections: {},
      settings: {},
      staticData: w.staticData ?? null,
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:00.000Z',
      tags: []
    }
  }
}
