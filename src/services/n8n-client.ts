// Thin, typed client for n8n's public REST API v1 (n8n 1.x and 2.x).
// Plain class, no Fastify: routes, workers, scripts and tests use it directly.
//
// - Auth header X-N8N-API-KEY; the key never appears in any error, message or callback.
// - Idempotent calls (GET, PUT, DELETE, activate, deactivate) are retried on 429, 500, 502,
//   503, 504, network errors and timeouts, with exponential backoff and full jitter, honouring
//   Retry-After (capped). POST /workflows (create) is never retried: it could duplicate.
// - Responses are validated lightly with zod; ids are normalised to strings.
// - Failures become AppError (N8nError) with problem codes from ../errors.ts.
//
// The parts, in ./n8n-client/: types.ts (what n8n answers and takes), http.ts (the attempt loop:
// timeout, retries, Retry-After, key, metrics report, errors), errors.ts (N8nError), schemas.ts
// (response parsers, request bodies). This file is the API: workflows, executions, ping.

import { isN8nNotFound } from './n8n-client/errors.ts'
import { N8nHttp, R_ACTIVATE, R_DEACTIVATE, R_EXECUTION, R_EXECUTIONS, R_WORKFLOW, R_WORKFLOWS } from './n8n-client/http.ts'
import { clampLimit, encodeId, noBody, parseExecution, parseExecutionList, parseWorkflow, parseWorkflowList, serialiseWorkflow } from './n8n-client/schemas.ts'
import type { DeleteWorkflowResult, ListExecutionsQuery, ListWorkflowsQuery, N8nClientOptions, N8nExecution, N8nExecutionPage, N8nPage, N8nWorkflow, N8nWorkflowInput } from './n8n-client/types.ts'

export type * from './n8n-client/types.ts'
export { isN8nError, isN8nNotFound, N8nError, networkCause, NO_API_KEY_MESSAGE } from './n8n-client/errors.ts'

export class N8nClient {
  readonly #http: N8nHttp

  constructor (options: N8nClientOptions) {
    this.#http = new N8nHttp(options)
  }

  // ---- workflows ---------------------------------------------------------

  async listWorkflows (query: ListWorkflowsQuery = {}): Promise<N8nPage<N8nWorkflow>> {
    const params = new URLSearchParams()
    if (query.active !== undefined) params.set('active', query.active ? 'true' : 'false')
    if (query.name !== undefined) params.set('name', query.name)
    if (query.tags !== undefined) params.set('tags', query.tags)
    if (query.limit !== undefined) params.set('limit', String(clampLimit(query.limit)))
    if (query.cursor !== undefined) params.set('cursor', query.cursor)
    const qs = params.size === 0 ? '' : '?' + params.toString()
    return await this.#http.call('GET', R_WORKFLOWS, '/workflows' + qs, undefined, true, parseWorkflowList)
  }

  /** Every workflow matching the query, following nextCursor across pages. */
  async * iterateWorkflows (query: Omit<ListWorkflowsQuery, 'cursor'> = {}): AsyncGenerator<N8nWorkflow, void, undefined> {
    let cursor: string | undefined
    const seen = new Set<string>()
    for (;;) {
      const page = await this.listWorkflows(cursor === undefined ? query : { ...query, cursor })
      yield * page.data
      if (page.nextCursor === null) return
      this.#http.guardCursor(seen, page.nextCursor, 'GET', R_WORKFLOWS)
      cursor = page.nextCursor
    }
  }

  async getWorkflow (id: string): Promise<N8nWorkflow> {
    return await this.#http.call('GET', R_WORKFLOW, '/workflows/' + encodeId(id, 'workflow'), undefined, true, parseWorkflow)
  }

  /** Not retried automatically: a retry after a lost answer could create a duplicate. */
  async createWorkflow (body: N8nWorkflowInput): Promise<N8nWorkflow> {
    return await this.#http.call('POST', R_WORKFLOWS, '/workflows', serialiseWorkflow(body), false, parseWorkflow)
  }

  /** Full replace (PUT). n8n 2.x republishes a published workflow automatically. */
  async updateWorkflow (id: string, body: N8nWorkflowInput): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow')
    return await this.#http.call('PUT', R_WORKFLOW, path, serialiseWorkflow(body), true, parseWorkflow)
  }

  /** A 404 counts as already gone. Also deletes the workflow's executions in n8n. */
  async deleteWorkflow (id: string): Promise<DeleteWorkflowResult> {
    try {
      await this.#http.call('DELETE', R_WORKFLOW, '/workflows/' + encodeId(id, 'workflow'), undefined, true, noBody)
      return { deleted: true }
    } catch (err) {
      if (isN8nNotFound(err)) return { deleted: false, reason: 'not_found' }
      throw err
    }
  }

  /** Idempotent in n8n ("publish" in 2.x). 400 without a trigger node → n8n_rejected. */
  async activateWorkflow (id: string): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow') + '/activate'
    return await this.#http.call('POST', R_ACTIVATE, path, undefined, true, parseWorkflow)
  }

  async deactivateWorkflow (id: string): Promise<N8nWorkflow> {
    const path = '/workflows/' + encodeId(id, 'workflow') + '/deactivate'
    return await this.#http.call('POST', R_DEACTIVATE, path, undefined, true, parseWorkflow)
  }

  // ---- executions --------------------------------------------------------

  async listExecutions (query: ListExecutionsQuery = {}): Promise<N8nPage<N8nExecution>> {
    const params = new URLSearchParams()
    if (query.workflowId !== undefined) params.set('workflowId', query.workflowId)
    if (query.status !== undefined) params.set('status', query.status)
    if (query.limit !== undefined) params.set('limit', String(clampLimit(query.limit)))
    if (query.cursor !== undefined) params.set('cursor', query.cursor)
    if (query.includeData !== undefined) params.set('includeData', query.includeData ? 'true' : 'false')
    const qs = params.size === 0 ? '' : '?' + params.toString()
    return await this.#http.call('GET', R_EXECUTIONS, '/executions' + qs, undefined, true, parseExecutionList)
  }

  /**
   * One page at a time (newest first), following nextCursor. `query.cursor` resumes from a
   * stored cursor. Each page carries the cursor that produced it and the next one.
   */
  async * iterateExecutionPages (query: ListExecutionsQuery = {}): AsyncGenerator<N8nExecutionPage, void, undefined> {
    let cursor: string | null = query.cursor ?? null
    const seen = new Set<string>()
    for (;;) {
      const page = await this.listExecutions(cursor === null ? { ...query, cursor: undefined } : { ...query, cursor })
      yield { data: page.data, cursor, nextCursor: page.nextCursor }
      if (page.nextCursor === null) return
      this.#http.guardCursor(seen, page.nextCursor, 'GET', R_EXECUTIONS)
      cursor = page.nextCursor
    }
  }

  async getExecution (id: string, options: { includeData?: boolean } = {}): Promise<N8nExecution> {
    let path = '/executions/' + encodeId(id, 'execution')
    if (options.includeData !== undefined) path += options.includeData ? '?includeData=true' : '?includeData=false'
    return await this.#http.call('GET', R_EXECUTION, path, undefined, true, parseExecution)
  }

  // ---- health ------------------------------------------------------------

  /** Cheap readiness probe (GET /workflows?limit=1, one attempt). Never throws. */
  async ping (timeoutMs?: number): Promise<boolean> {
    return await this.#http.ping(timeoutMs)
  }
}
