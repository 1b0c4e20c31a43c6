import { createHash } from 'node:crypto'
import type { Scope } from '../store/scope.ts'
import type { Store, WorkflowListQuery } from '../store/store.ts'
import type * as store from '../store/rows.ts'
import type { WorkflowRow } from '../store/rows.ts'
import type { Workflow, WorkflowListItem } from '../schemas/workflow.ts'
import { AppError } from '../errors.ts'
import { isN8nNotFound } from './n8n-client.ts'
import type { N8nWorkflow } from './n8n-client.ts'
import { notFound, WorkflowDeployer } from './workflow-deploy.ts'
import type { DeployOptions, Logger, WorkflowN8n } from './workflow-deploy.ts'
import { decodeCursor, encodeCursor } from '../lib/cursor.ts'
import { isUuid } from '../lib/ids.ts'
import type { WorkflowListCache, WorkflowListCacheStats } from './workflow-list-cache.ts'

export interface WorkflowServiceOptions {
  /** Where workflows live (Postgres or Supabase). */
  store: Store
  n8n: WorkflowN8n
  logger: Logger
  idempotencyTtlHours?: number
  /** GET /workflows answers kept while their stamp holds (stores with list stamps only). */
  listCache?: WorkflowListCache
  /** Test seam: runs after n8n created a workflow and before the database records it. */
  afterN8nCreate?: (row: WorkflowRow, created: N8nWorkflow) => Promise<void> | void
}

export interface CreateInput {
  name: string
  description?: string | null | undefined
  nodes: Record<string, unknown>[]
  connections: Record<string, unknown>
  settings: Record<string, unknown>
  active: boolean
}

export interface CreateResult {
  statusCode: number
  body: Workflow
  replayed: boolean
}

export interface ListResult {
  data: WorkflowListItem[]
  next_cursor: string | null
}

// The cursor carries created_at with Postgres's full (microsecond) precision: a millisecond ISO
// string would skip rows created within the same millisecond as the last row of a page.
export function encodeWorkflowCursor (row: { cursor_ts: string, id: string }): string {
  return encodeCursor([row.cursor_ts, row.id])
}

const CURSOR_TS = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/

export function decodeWorkflowCursor (cursor: string): { createdAt: string, id: string } {
  const v = decodeCursor(cursor)
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && isUuid(v[1])) {
    const m = CURSOR_TS.exec(v[0])
    const ms = Date.parse(v[0])
    // The round trip rejects dates that Date.parse rolls over (2026-02-31) and Postgres refuses.
    if (m && !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === m[1]) {
      return { createdAt: v[0], id: v[1] }
    }
  }
  throw new AppError('validation_failed', 'The cursor is not one this service issued', { errors: [{ path: 'querystring/cursor', message: 'invalid cursor' }] })
}

export function publicWorkflow (row: WorkflowRow & { cursor_ts?: string }): Workflow {
  const { deploy_attempts: _attempts, cursor_ts: _cursor, ...rest } = row
  return rest
}

function listItem (row: store.ListedWorkflowRow): WorkflowListItem {
  const { deploy_attempts: _attempts, cursor_ts: _cursor, row_version: _version, ...rest } = row
  return rest
}

/** GET /workflows' answer: the JSON bytes and the page's tag (see WorkflowService.listAnswer). */
export interface ListAnswer {
  readonly json: Buffer
  readonly tag: string | null
}

type ListQuery = { limit: number, cursor?: string | undefined, status?: string | undefined, active?: boolean | undefined, include?: 'definition' | undefined }

function listFilter (q: ListQuery): WorkflowListQuery {
  // One row more than the page: it tells whether a next page exists.
  const filter: WorkflowListQuery = { limit: q.limit + 1, definition: q.include === 'definition' }
  if (q.cursor) filter.after = decodeWorkflowCursor(q.cursor)
  if (q.status) filter.status = q.status
  if (q.active !== undefined) filter.active = q.active
  return filter
}

// Everything of the query that shapes the page; the cursor, the one free-form part, comes last.
function listCacheKey (userId: string, q: ListQuery): string {
  return `${userId}|${q.limit}|${q.include ?? ''}|${q.status ?? ''}|${q.active ?? ''}|${q.cursor ?? ''}`
}

function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new Error('a user scope is required')
  return scope.userId
}

export class WorkflowService {
  private readonly store: Store
  private readonly n8n: WorkflowN8n
  private readonly ttlHours: number
  private readonly deployer: WorkflowDeployer
  private readonly listCache: WorkflowListCache | undefined

  constructor (opts: WorkflowServiceOptions) {
    this.store = opts.store
    this.n8n = opts.n8n
    this.ttlHours = opts.idempotencyTtlHours ?? 24
    this.listCache = opts.listCache
    this.deployer = new WorkflowDeployer({ store: this.store, n8n: opts.n8n, logger: opts.logger, afterN8nCreate: opts.afterN8nCreate })
  }

  /**
   * A page of the caller's workflows as the JSON bytes of the answer, with its tag: the rows'
   * `id:row_version,...` (the page and the row that tells whether a next page exists), or null
   * when the store has no row versions. With a store that has list stamps, answers come from the
   * list cache while the caller's stamp has not moved (one index lookup instead of the page).
   */
  async listAnswer (scope: Scope, q: ListQuery): Promise<ListAnswer> {
    const userId = userIdOf(scope)
    const cache = this.listCache
    if (!cache?.enabled || !this.store.workflowListStamp) return await this.readListAnswer(scope, q)
    // Read before the page: a page read after the stamp is at least as new as the stamp says.
    const stamp = await this.store.workflowListStamp(scope)
    return await cache.load(listCacheKey(userId, q), stamp, () => this.readListAnswer(scope, q))
  }

  /** The list cache's figures (metrics), or null without one. */
  listCacheStats (): WorkflowListCacheStats | null {
    return this.listCache?.enabled ? this.listCache.stats() : null
  }

  private async readListAnswer (scope: Scope, q: ListQuery): Promise<ListAnswer> {
    const rows = await this.store.listWorkflows(scope, listFilter(q))
    const page = rows.slice(0, q.limit)
    const last = page[page.length - 1]
    const body: ListResult = { data: page.map(listItem), next_cursor: rows.length > q.limit && last ? encodeWorkflowCursor(last) : null }
    const tag = rows.every((r) => r.row_version !== undefined) ? rows.map((r) => `${r.id}:${r.row_version}`).join(',') : null
    return { json: Buffer.from(JSON.stringify(body)), tag }
  }

  async get (scope: Scope, id: string): Promise<Workflow> {
    const row = await this.store.getWorkflow(scope, id)
    if (!row) throw notFound()
    return publicWorkflow(row)
  }

  /**
   * Row first (pending), then n8n, then the row. With an Idempotency-Key the first answer is
   * stored and replayed; a key whose first request died midway resumes that request's deploy.
   */
  async create (scope: Scope, input: CreateInput, idempotencyKey?: string): Promise<CreateResult> {
    const userId = userIdOf(scope)
    const requestHash = createHash('sha256').update(JSON.stringify(input)).digest('hex')
    // One atomic step (SQL function create_workflow): claim the key (a different body is a 409), or
    // replay its stored answer, or resume the row of a first request that died midway; otherwise
    // insert the row (pending, inactive) and link it to the key.
    const started = await this.store.createWorkflow(scope, {
      name: input.name,
      description: input.description ?? null,
      nodes: input.nodes,
      connections: input.connections,
      settings: input.settings
    }, idempotencyKey ? { key: idempotencyKey, requestHash, ttlHours: this.ttlHours } : undefined)
    if (started.outcome === 'replay') {
      return { statusCode: started.statusCode, body: started.response, replayed: true }
    }
    // A resumed request has the same hash, so the same body: its wishes (`active` included) hold.
    const row = started.workflow
    const activate = input.active || row.active
    if (!idempotencyKey) {
      return { statusCode: 201, body: publicWorkflow(await this.deployer.deploy(scope, row.id, { activate })), replayed: false }
    }
    // With a key, the deploy and the stored answer happen under the workflow's deploy lock, and the
    // key is looked at again once the lock is ours: a concurrent request with the same key (which
    // cannot tell an in-flight first request from a dead one) waits for it and replays its answer
    // instead of deploying a second time.
    const result = await this.deployer.withDeployLock(scope, row.id, userId, async (): Promise<CreateResult> => {
      const current = await this.store.getIdempotencyRecord(scope, idempotencyKey)
      if (current && current.request_hash === requestHash && current.status_code !== null) {
        return { statusCode: current.status_code, body: current.response as Workflow, replayed: true }
      }
      const body = publicWorkflow(await this.deployer.deployLocked(scope, row.id, { activate }))
      await this.store.completeIdempotencyKey(scope, idempotencyKey, 201, body)
      return { statusCode: 201, body, replayed: false }
    })
    if (!result.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
    return result.value
  }

  /** The deploy saga (./workflow-deploy.ts); the sync's redeploy of a pending row comes here. */
  async deploy (scope: Scope, id: string, opts: DeployOptions = {}): Promise<WorkflowRow> {
    return await this.deployer.deploy(scope, id, opts)
  }

  async update (scope: Scope, id: string, changes: store.WorkflowChanges, ifMatch?: string): Promise<Workflow> {
    userIdOf(scope)
    // `If-Match: *` (any current version) only requires the workflow to exist, as RFC 9110 has it.
    const expected = ifMatch === undefined || ifMatch.trim() === '*' ? undefined : parseVersion(ifMatch)
    // Atomic (SQL function update_workflow_definition): a version mismatch is 412 precondition_failed.
    const updated = await this.store.updateWorkflowDefinition(scope, id, changes, expected)
    if (!updated) throw notFound()
    // Make n8n match; a workflow that was never deployed or went missing is deployed now.
    return publicWorkflow(await this.deployer.deploy(scope, id))
  }

  async setActive (scope: Scope, id: string, active: boolean): Promise<Workflow> {
    userIdOf(scope)
    const row = await this.store.getWorkflow(scope, id)
    if (!row) throw notFound()
    let n8nId = row.n8n_workflow_id
    if (n8nId && row.status === 'deployed') {
      // One GET before the switch: only the row's own n8n workflow is (de)activated.
      const owned = await this.deployer.ownership(row, n8nId)
      if (owned.kind === 'foreign') throw await this.deployer.refuseForeign(scope, row, n8nId, owned.reason, active ? 'activate' : 'deactivate')
      if (owned.kind === 'missing') throw await this.markMissing(scope, id)
    }
    if (!n8nId || row.status !== 'deployed') {
      // Deploy first, keeping n8n's current activation; the switch itself follows.
      const deployed = await this.deployer.deploy(scope, id)
      if (deployed.status === 'missing_in_n8n') throw new AppError('conflict', deployed.last_error ?? 'The workflow is missing in n8n')
      if (deployed.status !== 'deployed' || !deployed.n8n_workflow_id) {
        throw new AppError(deployed.status === 'error' ? 'n8n_rejected' : 'n8n_unavailable', deployed.last_error ?? 'The workflow could not be deployed to n8n')
      }
      n8nId = deployed.n8n_workflow_id
    }
    try {
      if (active) await this.n8n.activateWorkflow(n8nId)
      else await this.n8n.deactivateWorkflow(n8nId)
    } catch (err) {
      if (isN8nNotFound(err)) throw await this.markMissing(scope, id)
      throw err
    }
    // Atomic (SQL function set_workflow_active): `active` follows n8n, an old deploy error is cleared.
    const saved = await this.store.setWorkflowActive(scope, id, active)
    if (!saved) throw notFound()
    return publicWorkflow(saved)
  }

  private async markMissing (scope: Scope, id: string): Promise<AppError> {
    await this.store.recordDeployOutcome(scope, id, { status: 'missing_in_n8n', lastError: 'The workflow is missing in n8n; POST /workflows/{id}/redeploy (or a PATCH) recreates it' })
    return new AppError('conflict', 'The workflow is missing in n8n; redeploy it with POST /workflows/{id}/redeploy, then retry')
  }

  /**
   * POST /workflows/{id}/redeploy: make n8n match the row again, whatever its state. A row whose
   * n8n id names a workflow that is not its own gets its own (that one is left untouched).
   */
  async redeploy (scope: Scope, id: string): Promise<Workflow> {
    userIdOf(scope)
    return publicWorkflow(await this.deployer.deploy(scope, id, { replaceForeign: true }))
  }

  /** n8n first (its 404 counts as gone), then the row. */
  async delete (scope: Scope, id: string): Promise<void> {
    const userId = userIdOf(scope)
    const exists = await this.store.getWorkflow(scope, id)
    if (!exists) throw notFound()
    const lock = await this.deployer.withDeployLock(scope, id, userId, async () => {
      // Read again under the lock: a deploy that finished meanwhile may have set the n8n id.
      const row = await this.store.getWorkflow(scope, id)
      if (!row) throw notFound()
      let n8nId = row.n8n_workflow_id ?? (row.deploy_attempts > 0 ? (await this.deployer.findByMarker(row))?.id : undefined)
      if (n8nId && row.n8n_workflow_id) {
        // One GET before the DELETE: only the row's own n8n workflow is deleted; gone counts as deleted.
        const owned = await this.deployer.ownership(row, n8nId)
        if (owned.kind === 'foreign') throw await this.deployer.refuseForeign(scope, row, n8nId, `${owned.reason}, and the row was kept`, 'delete')
        if (owned.kind === 'missing') n8nId = undefined
      }
      if (n8nId) await this.n8n.deleteWorkflow(n8nId)
      const deleted = await this.store.deleteWorkflow(scope, id)
      if (!deleted) throw notFound()
    })
    if (!lock.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
  }
}

export function parseVersion (ifMatch: string): number {
  // "<version>" or GET's "<version>.<digest>": the version is what a PATCH is conditional on
  const m = /^\s*(?:W\/)?"?(\d{1,9})(?:\.[A-Za-z0-9_-]{1,32})?"?\s*$/.exec(ifMatch)
  if (!m) throw new AppError('validation_failed', 'If-Match must be the workflow\'s version, e.g. "3"', { errors: [{ path: 'headers/if-match', message: 'expected a version number' }] })
  return Number(m[1])
}
