// The client's public types: what n8n's API v1 answers (as the client normalises it) and what it takes.

export interface N8nNode {
  id?: string
  name: string
  type: string
  typeVersion?: number
  position?: [number, number]
  parameters?: Record<string, unknown>
  [key: string]: unknown
}

export interface N8nTag {
  id: string
  name: string
  [key: string]: unknown
}

export interface N8nWorkflow {
  id: string
  name: string
  active: boolean
  nodes: N8nNode[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  staticData?: Record<string, unknown> | null
  createdAt: string
  updatedAt: string
  tags?: N8nTag[]
  [key: string]: unknown
}

/** What n8n accepts on create and on PUT (full replace). Only these keys are ever sent. */
export interface N8nWorkflowInput {
  name: string
  nodes: N8nNode[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  staticData?: Record<string, unknown> | null
}

export type N8nExecutionStatus =
  | 'canceled' | 'crashed' | 'error' | 'new' | 'running' | 'success' | 'unknown' | 'waiting'

export interface N8nExecution {
  id: string
  finished: boolean
  mode: string
  retryOf: string | null
  retrySuccessId: string | null
  /** One of N8nExecutionStatus in the versions we know; kept open for future ones. */
  status: N8nExecutionStatus | (string & {})
  startedAt: string | null
  stoppedAt: string | null
  workflowId: string
  waitTill: string | null
  /** Present only with includeData=true. */
  data?: unknown
  [key: string]: unknown
}

export interface N8nPage<T> {
  data: T[]
  nextCursor: string | null
}

export interface N8nExecutionPage extends N8nPage<N8nExecution> {
  /** The cursor that produced this page (null for the first page). */
  cursor: string | null
}

export interface ListWorkflowsQuery {
  active?: boolean
  name?: string
  tags?: string
  /** 1..250 (clamped). */
  limit?: number
  cursor?: string
}

export interface ListExecutionsQuery {
  workflowId?: string
  status?: string
  /** 1..250 (clamped). */
  limit?: number
  cursor?: string
  includeData?: boolean
}

export type DeleteWorkflowResult = { deleted: true } | { deleted: false, reason: 'not_found' }

export interface N8nCallInfo {
  method: string
  /** Templated path, e.g. `/workflows/:id`: safe as a metrics label. */
  route: string
  /** HTTP status of the attempt, null when there was no answer (network error, timeout). */
  status: number | null
  durationMs: number
  /** One report per attempt: 'retry' when another attempt follows. */
  outcome: 'ok' | 'error' | 'retry'
}

export interface N8nClientOptions {
  /** e.g. http://127.0.0.1:5678/api/v1 */
  baseUrl: string
  apiKey?: string
  /** Per attempt. Default 10000. */
  timeoutMs?: number
  /** Extra attempts for idempotent calls. Default 3. */
  retries?: number
  /** Default 200. */
  retryBaseDelayMs?: number
  /** Cap for backoff and for Retry-After. Default 5000. */
  maxRetryDelayMs?: number
  onCall?: (info: N8nCallInfo) => void
  fetch?: typeof fetch
}
