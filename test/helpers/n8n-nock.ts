// nock helpers for the route tests: n8n answers that satisfy the client's zod shapes, request
// bodies captured in the body matcher (a reply *function* that reads the body hangs under fetch
// with nock 15), and a record of every request that no interceptor matched.
import nock from 'nock'
import { N8N_TEST_ORIGIN } from './app.ts'

export const N8N_API_KEY = 'n8n-test-api-key-should-never-leak'
export const API = '/api/v1'

export interface N8nWorkflowReply {
  id: string
  name: string
  active: boolean
  nodes: Array<Record<string, unknown>>
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  staticData: Record<string, unknown> | null
  createdAt: string
  updatedAt: string
}

export function n8nWorkflow (id: string, over: Partial<N8nWorkflowReply> = {}): N8nWorkflowReply {
  const now = new Date().toISOString()
  return { id, name: 'wf', active: false, nodes: [], connections: {}, settings: {}, staticData: null, createdAt: now, updatedAt: now, ...over }
}

export function n8n (): nock.Scope {
  return nock(N8N_TEST_ORIGIN, { reqheaders: { 'x-n8n-api-key': N8N_API_KEY } })
}

export interface Captured<T = Record<string, unknown>> {
  bodies: T[]
  scope: nock.Scope
}

// What n8n holds per id, as far as the service's ownership check goes (name and staticData):
// recorded from every create body, or set with `holds` for rows a test inserted itself.
const held = new Map<string, Pick<N8nWorkflowReply, 'name' | 'staticData'>>()

/** n8n's workflow `id` is this row's own (the name prefix and staticData marker a deploy leaves). */
export function holds (id: string, row: { id: string, user_id: string }, name = 'wf'): void {
  held.set(id, { name: `[USR-${row.user_id.replace(/-/g, '').slice(0, 8)}] ${name}`, staticData: { workflow_sync: { row_id: row.id, user_id: row.user_id } } })
}

/**
 * GET /workflows/:id (once), answered with what n8n holds for it: the one GET the service makes
 * before it updates, (de)activates or deletes a workflow. Its own scope: not part of isDone().
 */
export function expectGet (id: string, over: Partial<N8nWorkflowReply> = {}): nock.Scope {
  return n8n().get(`${API}/workflows/${id}`).reply(() => [200, n8nWorkflow(id, { ...held.get(id), ...over })])
}

/** POST /workflows answered with n8n id `id`; every body n8n received is kept. */
export function expectCreate (id: string, over: Partial<N8nWorkflowReply> = {}): Captured {
  const bodies: Record<string, unknown>[] = []
  const scope = n8n().post(`${API}/workflows`, (body: Record<string, unknown>) => {
    bodies.push(body)
    held.set(id, { name: String(body.name), staticData: (body.staticData ?? null) as Record<string, unknown> | null })
    return true
  }).reply(200, n8nWorkflow(id, over))
  return { bodies, scope }
}

/** PUT /workflows/:id; every body n8n received is kept. */
export function expectUpdate (id: string, over: Partial<N8nWorkflowReply> = {}): Captured {
  expectGet(id)
  const bodies: Record<string, unknown>[] = []
  const scope = n8n().put(`${API}/workflows/${id}`, (body: Record<string, unknown>) => { bodies.push(body); return true })
    .reply(200, n8nWorkflow(id, over))
  return { bodies, scope }
}

export function expectActivate (id: string): nock.Scope {
  expectGet(id)
  return n8n().post(`${API}/workflows/${id}/activate`).reply(200, n8nWorkflow(id, { active: true }))
}

export function expectDeactivate (id: string): nock.Scope {
  expectGet(id)
  return n8n().post(`${API}/workflows/${id}/deactivate`).reply(200, n8nWorkflow(id, { active: false }))
}

export interface Unmatched {
  /** "METHOD url" of every request that reached nock with no interceptor for it. */
  readonly requests: string[]
  stop(): void
}

/** Records requests nock could not match (an unexpected n8n call). */
export function recordUnmatched (): Unmatched {
  const requests: string[] = []
  const onNoMatch = (req: { method?: string, href?: string, path?: string, url?: string }): void => {
    requests.push(`${req.method ?? '?'} ${req.href ?? req.url ?? req.path ?? '?'}`)
  }
  nock.emitter.on('no match', onNoMatch)
  return {
    requests,
    stop () { nock.emitter.removeListener('no match', onNoMatch) }
  }
}
