// POST /workflows/{id}/run: n8n's public API has no endpoint that runs a workflow, so a workflow
// whose trigger is a Webhook node is run by calling that webhook on n8n (N8N_WEBHOOK_URL). The
// execution then reaches the ledger through the live tail (or the next sync).
//
// Only the row's own n8n workflow is ever called: its n8n copy must carry the row's staticData
// marker and the owner's `[USR-…]` name prefix, and the webhook is read from n8n's copy (what n8n
// will actually serve), not from the row. The webhook call carries no API key.
import type { Store } from '../store/store.ts'
import type { Scope } from '../store/scope.ts'
import { AppError } from '../errors.ts'
import type { N8nClient, N8nNode } from './n8n-client.ts'
import { isN8nNotFound } from './n8n-client.ts'
import { identityOf, notOwnedReason } from './ownership.ts'

export const WEBHOOK_NODE_TYPE = 'n8n-nodes-base.webhook'
/** What the 422 names: the triggers this endpoint can run. */
export const RUNNABLE_TRIGGERS = [WEBHOOK_NODE_TYPE] as const

export interface RunResult {
  workflow_id: string
  n8n_workflow_id: string
  trigger: string
  method: string
  /** n8n's HTTP status for the webhook call. */
  n8n_status: number
  accepted_at: string
}

export interface WorkflowRunnerOptions {
  store: Store
  n8n: Pick<N8nClient, 'getWorkflow'>
  /** Base of n8n's production webhooks, e.g. http://127.0.0.1:5678/webhook. */
  webhookBaseUrl: string
  timeoutMs: number
  fetch?: typeof fetch
  now?: () => Date
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export class WorkflowRunner {
  readonly #store: Store
  readonly #n8n: WorkflowRunnerOptions['n8n']
  readonly #base: string
  readonly #timeoutMs: number
  readonly #fetch: typeof fetch | undefined
  readonly #now: () => Date

  constructor (opts: WorkflowRunnerOptions) {
    this.#store = opts.store
    this.#n8n = opts.n8n
    this.#base = opts.webhookBaseUrl.replace(/\/+$/, '')
    this.#timeoutMs = opts.timeoutMs
    this.#fetch = opts.fetch
    this.#now = opts.now ?? (() => new Date())
  }

  async run (scope: Scope, id: string, body: unknown): Promise<RunResult> {
    if (scope.kind !== 'user') throw new AppError('forbidden', 'This operation needs a signed-in user')
    const row = await this.#store.getWorkflow(scope, id)
    if (!row) throw new AppError('not_found', 'No workflow with this id')
    // The row's own definition decides first (a clear 422 without asking n8n).
    const own = findWebhook(row.nodes as unknown as N8nNode[])
    if (own === null) throw notRunnable(row.nodes as unknown as N8nNode[])
    const n8nId = row.n8n_workflow_id
    if (row.status !== 'deployed' || !n8nId) {
      throw new AppError('conflict', `The workflow is ${row.status} in n8n, not deployed; redeploy it (POST /workflows/${id}/redeploy), then run it`)
    }
    if (!row.active) throw new AppError('conflict', `n8n serves a workflow's webhook only while it is active: activate it (POST /workflows/${id}/activate), then run it`)

    let wf
    try {
      wf = await this.#n8n.getWorkflow(n8nId)
    } catch (err) {
      if (isN8nNotFound(err)) throw new AppError('conflict', `The workflow is missing in n8n; redeploy it with POST /workflows/${id}/redeploy`)
      throw err
    }
    // Never act on an n8n workflow that is not the row's.
    const notOwned = notOwnedReason(n8nId, row, identityOf(wf))
    if (notOwned !== null) throw new AppError('conflict', notOwned)
    const hook = findWebhook(wf.nodes)
    if (hook === null) throw notRunnable(wf.nodes)
    if (!wf.active) throw new AppError('conflict', `The workflow is not active in n8n, so its webhook is not served: activate it (POST /workflows/${id}/activate), then run it`)

    const method = webhookMethod(hook)
    const hasBody = body !== undefined && body !== null
    if (hasBody && !BODY_METHODS.has(method)) {
      throw new AppError('validation_failed', `This workflow's webhook is called with ${method}, which takes no body`, { errors: [{ path: 'body', message: `not allowed for a ${method} webhook` }] })
    }
    const url = `${this.#base}/${webhookPath(n8nId, hook)}`
    const init: RequestInit = { method, headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(this.#timeoutMs) }
    if (BODY_METHODS.has(method)) {
      init.body = JSON.stringify(hasBody ? body : {})
      init.headers = { accept: 'application/json', 'content-type': 'application/json' }
    }
    let res: Response
    try {
      res = await (this.#fetch ?? globalThis.fetch)(url, init)
      await res.body?.cancel()
    } catch {
      throw new AppError('n8n_unavailable', `n8n's webhook could not be called (${method} ${new URL(this.#base).origin}/webhook/…): n8n is unreachable or did not answer within ${this.#timeoutMs} ms`)
    }
    if (res.status === 404) {
      throw new AppError('conflict', 'n8n does not serve this workflow\'s webhook (404): is it active? Activate it (POST /workflows/{id}/activate) and retry')
    }
    if (res.status >= 500) throw new AppError('n8n_error', `n8n answered HTTP ${res.status} to the webhook call`)
    if (res.status >= 400) throw new AppError('n8n_rejected', `n8n refused the webhook call (HTTP ${res.status}); check the Webhook node's authentication and method`)
    return {
      workflow_id: row.id,
      n8n_workflow_id: n8nId,
      trigger: WEBHOOK_NODE_TYPE,
      method,
      n8n_status: res.status,
      accepted_at: this.#now().toISOString()
    }
  }
}

function findWebhook (nodes: N8nNode[] | undefined): N8nNode | null {
  for (const n of nodes ?? []) {
    if (n && n.type === WEBHOOK_NODE_TYPE && (n as { disabled?: unknown }).disabled !== true) return n
  }
  return null
}

function notRunnable (nodes: N8nNode[] | undefined): AppError {
  const triggers = (nodes ?? []).map((n) => n?.type).filter((t): t is string => typeof t === 'string' && /trigger|webhook/i.test(t))
  const has = triggers.length > 0 ? `its trigger is ${[...new Set(triggers)].join(', ')}` : 'it has no trigger node'
  return new AppError('unprocessable', `This workflow cannot be run from here: ${has}. Runnable triggers: ${RUNNABLE_TRIGGERS.join(', ')} (a Webhook node)`, {
    errors: [{ path: 'nodes', message: `runnable triggers: ${RUNNABLE_TRIGGERS.join(', ')}` }]
  })
}

function webhookMethod (node: N8nNode): string {
  const p = (node.parameters ?? {}) as Record<string, unknown>
  const m = p.httpMethod
  if (Array.isArray(m)) {
    const list = m.filter((x): x is string => typeof x === 'string').map((x) => x.toUpperCase())
    return list.includes('POST') ? 'POST' : (list[0] ?? 'GET')
  }
  return typeof m === 'string' && m !== '' ? m.toUpperCase() : 'GET'
}

/** n8n's production path of a Webhook node (n8n's getNodeWebhookPath, isFullPath). */
function webhookPath (workflowId: string, node: N8nNode): string {
  const p = (node.parameters ?? {}) as Record<string, unknown>
  const path = (typeof p.path === 'string' ? p.path : '').replace(/^\/+/, '')
  const webhookId = (node as { webhookId?: unknown }).webhookId
  if (typeof webhookId === 'string' && webhookId !== '') return (path || webhookId).split('/').map(encodeURIComponent).join('/')
  return `${encodeURIComponent(workflowId)}/${encodeURIComponent(node.name.toLowerCase())}/${path.split('/').map(encodeURIComponent).join('/')}`
}
