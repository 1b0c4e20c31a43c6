// The typed client for workflow-sync: openapi-fetch over the types generated from
// openapi/openapi.json (client/schema.d.ts, `npm run openapi`). Every path, parameter, body and
// answer is typed; errors come back as the service's problem+json (`error`), never thrown.
//
//   const api = createWorkflowSyncClient({ baseUrl: 'http://127.0.0.1:3000', getAccessToken: () => token })
//   const { data, error } = await api.GET('/workflows', { params: { query: { limit: 50 } } })
//   const stats = await api.GET('/workflows/{id}/stats', { params: { path: { id }, query: { bucket: 'day' } } })
import createClient from 'openapi-fetch'
import type { Client, Middleware } from 'openapi-fetch'
import type { components, operations, paths } from './schema.d.ts'

export type { components, operations, paths }
type Schemas = components['schemas']
export type Workflow = Schemas['Workflow']
export type WorkflowListItem = Schemas['WorkflowListItem']
export type WorkflowList = Schemas['WorkflowList']
export type CreateWorkflow = Schemas['CreateWorkflow']
export type UpdateWorkflow = Schemas['UpdateWorkflow']
export type Execution = Schemas['Execution']
export type ExecutionStats = Schemas['ExecutionStats']
export type ExecutionStatsBucket = Schemas['ExecutionStatsBucket']
export type SyncResult = Schemas['SyncResult']
export type Me = Schemas['Me']
/** Every non-2xx answer: `{ type, title, status, detail, code, requestId, errors? }`. */
export type Problem = Schemas['Problem']

export type WorkflowSyncClient = Client<paths>

export interface WorkflowSyncClientOptions {
  /** Where the service is, e.g. `http://127.0.0.1:3000` (no trailing path). */
  baseUrl: string
  /**
   * The caller's access token, asked before every request (so a refreshed Supabase session is
   * picked up): e.g. `async () => (await supabase.auth.getSession()).data.session?.access_token`.
   * Nothing (null/undefined) sends no Authorization header.
   */
  getAccessToken?: () => string | null | undefined | Promise<string | null | undefined>
  /** A fetch of your own (tests, a server runtime); default: globalThis.fetch. */
  fetch?: typeof globalThis.fetch
  /** Headers sent with every request. */
  headers?: Record<string, string>
}

export function createWorkflowSyncClient (opts: WorkflowSyncClientOptions): WorkflowSyncClient {
  const client = createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.headers ? { headers: opts.headers } : {})
  })
  const getToken = opts.getAccessToken
  if (getToken) {
    const auth: Middleware = {
      async onRequest ({ request }) {
        const token = await getToken()
        if (token) request.headers.set('authorization', `Bearer ${token}`)
        return request
      }
    }
    client.use(auth)
  }
  return client
}

/** Whether a value is the service's problem answer (the `error` of a call). */
export function isProblem (value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && typeof (value as Problem).code === 'string' && typeof (value as Problem).status === 'number'
}
