import { createHash } from 'node:crypto'
import type { Database } from '../db/database.ts'
import { PostgresStore } from '../store/postgres-store.ts'
import type { Scope } from '../store/scope.ts'
import type { Store, WorkflowListQuery } from '../store/store.ts'
import type * as store from '../store/workflow-store.ts'
import type { WorkflowRow } from '../store/workflow-store.ts'
import type { Workflow, WorkflowListItem } from '../schemas/workflow.ts'
import { AppError } from '../errors.ts'
import { isN8nError, isN8nNotFound } from './n8n-client.ts'
import type { N8nClient, N8nError, N8nNode, N8nWorkflow } from './n8n-client.ts'
import { identityOf, notOwnedReason } from './ownership.ts'
import { decodeCursor, encodeCursor } from '../lib/cursor.ts'
import { isUuid } from '../lib/ids.ts'
import { markerFor } from '../lib/marker.ts'
import { n8nName, userTag } from '../lib/user-tag.ts'

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export type WorkflowN8n = Pick<N8nClient, 'listWorkflows' | 'createWorkflow' | 'updateWorkflow' | 'deleteWorkflow' | 'activateWorkflow' | 'deactivateWorkflow' | 'getWorkflow'>

export interface WorkflowServiceOptions {
  /** Where workflows live (Postgres or Supabase). */
  store?: Store
  /** Shorthand for `store: new PostgresStore(db)`. */
  db?: Database
  n8n: WorkflowN8n
  logger: Logger
  idempotencyTtlHours?: number
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
  const { deploy_attempts: _attempts, cursor_ts: _cursor, ...rest } = row
  return rest
}

function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new Error('a user scope is required')
  return scope.userId
}

function notFound (): AppError {
  return new AppError('not_found', 'No workflow with this id')
}

/** What n8n holds under a row's n8n id: the row's own workflow, nothing, or someone else's. */
type Ownership = { kind: 'owned', workflow: N8nWorkflow } | { kind: 'missing' } | { kind: 'foreign', reason: string }

function redeployHint (id: string): string {
  return `POST /workflows/${id}/redeploy gives this row its own n8n workflow`
}

export class WorkflowService {
  private readonly store: Store
  private readonly n8n: WorkflowN8n
  private readonly log: Logger
  private readonly ttlHours: number
  private readonly afterN8nCreate: WorkflowServiceOptions['afterN8nCreate']

  constructor (opts: WorkflowServiceOptions) {
    if (opts.store) this.store = opts.store
    else if (opts.db) this.store = new PostgresStore(opts.db)
    else throw new TypeError('WorkflowService needs a store (or a db)')
    this.n8n = opts.n8n
    this.log = opts.logger
    this.ttlHours = opts.idempotencyTtlHours ?? 24
    this.afterN8nCreate = opts.afterN8nCreate
  }

  async list (scope: Scope, q: { limit: number, cursor?: string | undefined, status?: string | undefined, active?: boolean | undefined, include?: 'definition' | undefined }): Promise<ListResult> {
    userIdOf(scope)
    const filter: WorkflowListQuery = { limit: q.limit + 1, definition: q.include === 'definition' }
    if (q.cursor) filter.after = decodeWorkflowCursor(q.cursor)
    if (q.status) filter.status = q.status
    if (q.active !== undefined) filter.active = q.active
    const rows = await this.store.listWorkflows(scope, filter)
    const page = rows.slice(0, q.limit)
    const last = page[page.length - 1]
    return {
      data: page.map(listItem),
      next_cursor: rows.length > q.limit && last ? encodeWorkflowCursor(last) : null
    }
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
      return { statusCode: 201, body: publicWorkflow(await this.deploy(scope, row.id, { activate })), replayed: false }
    }
    // With a key, the deploy and the stored answer happen under the workflow's deploy lock, and the
    // key is looked at again once the lock is ours: a concurrent request with the same key (which
    // cannot tell an in-flight first request from a dead one) waits for it and replays its answer
    // instead of deploying a second time.
    const result = await this.withDeployLock(scope, row.id, userId, async (): Promise<CreateResult> => {
      const current = await this.store.getIdempotencyRecord(scope, idempotencyKey)
      if (current && current.request_hash === requestHash && current.status_code !== null) {
        return { statusCode: current.status_code, body: current.response as Workflow, replayed: true }
      }
      const body = publicWorkflow(await this.deployLocked(scope, row.id, { activate }))
      await this.store.completeIdempotencyKey(scope, idempotencyKey, 201, body)
      return { statusCode: 201, body, replayed: false }
    })
    if (!result.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
    return result.value
  }

  /**
   * One deploy (or delete) per workflow at a time, across replicas. The lock belongs to the
   * workflow's owner (Supabase leases live under the owner's key prefix): a user's own, or, for the
   * service, read from the row.
   */
  private async withDeployLock<T> (scope: Scope, id: string, ownerId: string | null, fn: () => Promise<T>): Promise<{ acquired: true, value: T } | { acquired: false }> {
    let owner = ownerId ?? (scope.kind === 'user' ? scope.userId : null)
    if (owner === null) {
      const row = await this.store.getWorkflow(scope, id)
      if (!row) throw notFound()
      owner = row.user_id
    }
    return this.store.withLock(scope, { name: 'deploy', workflowId: id, ownerId: owner }, fn)
  }

  /**
   * Makes n8n match the row: adopt or create when the row has no n8n workflow, update it when it
   * has one (recreate when n8n lost it), then mirror `active`. n8n being down leaves the row
   * `pending` with last_error, so a later deploy (PATCH, redeploy, sync) finishes the job.
   * One deploy per workflow at a time, across replicas.
   */
  async deploy (scope: Scope, id: string, opts: DeployOptions = {}): Promise<WorkflowRow> {
    const result = await this.withDeployLock(scope, id, null, () => this.deployLocked(scope, id, opts))
    if (!result.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
    return result.value
  }

  private async deployLocked (scope: Scope, id: string, opts: DeployOptions): Promise<WorkflowRow> {
    // Atomic (SQL function begin_deploy): lock the row, count this attempt; the row as it was before.
    const row = await this.store.beginDeploy(scope, id)
    if (!row) throw notFound()
    const wantActive = opts.activate ?? row.active
    const definition = {
      name: n8nName(row.user_id, row.name),
      nodes: row.nodes as unknown as N8nNode[],
      connections: row.connections,
      settings: row.settings
    }
    let n8nId = row.n8n_workflow_id
    // 'definition' until n8n holds the row's definition, then 'activation'.
    let phase: 'definition' | 'activation' = 'definition'
    try {
      if (n8nId) {
        // One GET before the PUT: the row's n8n id alone does not prove the workflow is the row's.
        const owned = await this.ownership(row, n8nId)
        if (owned.kind === 'foreign') {
          this.log.warn({ workflowId: id, n8nWorkflowId: n8nId, reason: owned.reason }, 'deploy: the n8n workflow is not this row\'s; left untouched')
          if (!opts.replaceForeign) {
            const saved = await this.store.recordDeployOutcome(scope, id, { status: 'missing_in_n8n', lastError: `${owned.reason}. ${redeployHint(id)}` })
            if (!saved) throw notFound()
            return saved
          }
          // An explicit redeploy: the row gets its own workflow (adopted by marker or created).
          n8nId = null
        } else if (owned.kind === 'missing') {
          this.log.warn({ workflowId: id, n8nWorkflowId: n8nId }, 'workflow missing in n8n; recreating it')
          n8nId = null
        } else {
          try {
            await this.n8n.updateWorkflow(n8nId, definition)
          } catch (err) {
            if (!isN8nNotFound(err)) throw err
            this.log.warn({ workflowId: id, n8nWorkflowId: n8nId }, 'workflow missing in n8n; recreating it')
            n8nId = null
          }
        }
      }
      if (!n8nId) {
        // row.deploy_attempts was read before this attempt was counted: above 0, an earlier
        // attempt may have created the workflow in n8n (then died, or lost n8n's answer).
        const adopted = row.deploy_attempts > 0 ? await this.findByMarker(row) : undefined
        if (adopted) {
          this.log.info({ workflowId: id, n8nWorkflowId: adopted.id }, 'adopted the workflow an earlier deploy created')
          n8nId = adopted.id
          await this.n8n.updateWorkflow(n8nId, definition)
        } else {
          const created = await this.n8n.createWorkflow({ ...definition, staticData: markerFor(row) })
          n8nId = created.id
          if (this.afterN8nCreate) await this.afterN8nCreate(row, created)
        }
      }
      phase = 'activation'
      // Record the n8n id before activating, so an activation failure cannot orphan it.
      await this.store.recordDeployOutcome(scope, id, { status: 'deployed', n8nWorkflowId: n8nId, lastError: null })
      if (wantActive) await this.n8n.activateWorkflow(n8nId)
      else if (row.active) await this.n8n.deactivateWorkflow(n8nId)
      const done = await this.store.recordDeployOutcome(scope, id, { status: 'deployed', lastError: null, active: wantActive })
      if (!done) throw notFound()
      return done
    } catch (err) {
      // Only n8n's failures are outcomes of the deploy; our own (database, not_found) propagate.
      if (!isN8nError(err)) throw err
      const outcome = deployFailure(err, phase, wantActive)
      const saved = await this.store.recordDeployOutcome(scope, id, {
        ...outcome,
        ...(n8nId !== null ? { n8nWorkflowId: n8nId } : {})
      })
      this.log.warn({ workflowId: id, code: err.code, phase }, 'deploy did not complete')
      if (!saved) throw notFound()
      return saved
    }
  }

  /**
   * The workflow an earlier attempt created for this row, found by its staticData marker. n8n's
   * `name` filter matches a substring, so the user's `[USR-xxxxxxxx]` prefix also finds a workflow
   * created under a name the row no longer has (renamed while the deploy was pending).
   */
  private async findByMarker (row: WorkflowRow): Promise<N8nWorkflow | undefined> {
    const prefix = userTag(row.user_id)
    const seen = new Set<string>()
    let cursor: string | undefined
    do {
      const page = await this.n8n.listWorkflows({ name: prefix, limit: 250, ...(cursor ? { cursor } : {}) })
      for (const w of page.data) {
        if (notOwnedReason(w.id, row, identityOf(w)) === null) return w
      }
      cursor = page.nextCursor ?? undefined
      if (cursor !== undefined) {
        if (seen.has(cursor)) break
        seen.add(cursor)
      }
    } while (cursor)
    return undefined
  }

  /** One GET: is n8n's workflow `n8nId` this row's (marker and owner prefix)? n8n errors propagate. */
  private async ownership (row: WorkflowRow, n8nId: string): Promise<Ownership> {
    let workflow: N8nWorkflow
    try {
      workflow = await this.n8n.getWorkflow(n8nId)
    } catch (err) {
      if (isN8nNotFound(err)) return { kind: 'missing' }
      throw err
    }
    const reason = notOwnedReason(n8nId, row, identityOf(workflow))
    return reason === null ? { kind: 'owned', workflow } : { kind: 'foreign', reason }
  }

  /** Marks the row drift (its n8n id is someone else's workflow) and answers the 409 saying why. */
  private async refuseForeign (scope: Scope, row: WorkflowRow, n8nId: string, reason: string, action: string): Promise<AppError> {
    this.log.warn({ workflowId: row.id, n8nWorkflowId: n8nId, reason, action }, `${action}: the n8n workflow is not this row's; left untouched`)
    await this.store.recordDeployOutcome(scope, row.id, { status: 'missing_in_n8n', lastError: `${reason}. ${redeployHint(row.id)}` })
    return new AppError('conflict', `${reason}. ${redeployHint(row.id)}`)
  }

  async update (scope: Scope, id: string, changes: store.WorkflowChanges, ifMatch?: string): Promise<Workflow> {
    userIdOf(scope)
    // `If-Match: *` (any current version) only requires the workflow to exist, as RFC 9110 has it.
    const expected = ifMatch === undefined || ifMatch.trim() === '*' ? undefined : parseVersion(ifMatch)
    // Atomic (SQL function update_workflow_definition): a version mismatch is 412 precondition_failed.
    const updated = await this.store.updateWorkflowDefinition(scope, id, changes, expected)
    if (!updated) throw notFound()
    // Make n8n match; a workflow that was never deployed or went missing is deployed now.
    return publicWorkflow(await this.deploy(scope, id))
  }

  async setActive (scope: Scope, id: string, active: boolean): Promise<Workflow> {
    userIdOf(scope)
    const row = await this.store.getWorkflow(scope, id)
    if (!row) throw notFound()
    let n8nId = row.n8n_workflow_id
    if (n8nId && row.status === 'deployed') {
      // One GET before the switch: only the row's own n8n workflow is (de)activated.
      const owned = await this.ownership(row, n8nId)
      if (owned.kind === 'foreign') throw await this.refuseForeign(scope, row, n8nId, owned.reason, active ? 'activate' : 'deactivate')
      if (owned.kind === 'missing') throw await this.markMissing(scope, id)
    }
    if (!n8nId || row.status !== 'deployed') {
      // Deploy first, keeping n8n's current activation; the switch itself follows.
      const deployed = await this.deploy(scope, id)
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
    return publicWorkflow(await this.deploy(scope, id, { replaceForeign: true }))
  }

  /** n8n first (its 404 counts as gone), then the row. */
  async delete (scope: Scope, id: string): Promise<void> {
    const userId = userIdOf(scope)
    const exists = await this.store.getWorkflow(scope, id)
    if (!exists) throw notFound()
    const lock = await this.withDeployLock(scope, id, userId, async () => {
      // Read again under the lock: a deploy that finished meanwhile may have set the n8n id.
      const row = await this.store.getWorkflow(scope, id)
      if (!row) throw notFound()
      let n8nId = row.n8n_workflow_id ?? (row.deploy_attempts > 0 ? (await this.findByMarker(row))?.id : undefined)
      if (n8nId && row.n8n_workflow_id) {
        // One GET before the DELETE: only the row's own n8n workflow is deleted; gone counts as deleted.
        const owned = await this.ownership(row, n8nId)
        if (owned.kind === 'foreign') throw await this.refuseForeign(scope, row, n8nId, `${owned.reason}, and the row was kept`, 'delete')
        if (owned.kind === 'missing') n8nId = undefined
      }
      if (n8nId) await this.n8n.deleteWorkflow(n8nId)
      const deleted = await this.store.deleteWorkflow(scope, id)
      if (!deleted) throw notFound()
    })
    if (!lock.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
  }
}

/**
 * The row's state after n8n failed a deploy. Before n8n holds the definition: `error` when n8n
 * refused it (the user's to fix), `pending` when n8n was unreachable or failed (a later deploy
 * retries). After: `deployed`, with the activation failure in last_error; `active` becomes false
 * only when n8n refused the activation (otherwise n8n's state is unknown and the row keeps its own).
 */
export function deployFailure (err: N8nError, phase: 'definition' | 'activation', wantActive: boolean): store.DeployOutcome {
  if (err.code === 'not_found') {
    return { status: 'missing_in_n8n', lastError: 'The workflow is missing in n8n; POST /workflows/{id}/redeploy (or a PATCH) recreates it', active: false }
  }
  const rejected = err.code === 'n8n_rejected'
  const why = rejected ? err.message : `${err.code === 'n8n_unavailable' ? 'n8n is unavailable' : 'n8n failed'}: ${err.message}`
  if (phase === 'definition') {
    return { status: rejected ? 'error' : 'pending', lastError: rejected ? `n8n rejected the workflow: ${why}` : why }
  }
  const what = wantActive ? 'activate' : 'deactivate'
  const reason = why.replace(/^n8n cannot activate the workflow: /, '')
  return {
    status: 'deployed',
    lastError: `n8n could not ${what} the workflow: ${reason}`,
    ...(rejected && wantActive ? { active: false } : {})
  }
}

export interface DeployOptions {
  activate?: boolean
  /** Explicit redeploy: a row whose n8n id is not its own workflow gets its own (else it is drift). */
  replaceForeign?: boolean
}

export function parseVersion (ifMatch: string): number {
  // "<version>" or GET's "<version>.<digest>": the version is what a PATCH is conditional on
  const m = /^\s*(?:W\/)?"?(\d{1,9})(?:\.[A-Za-z0-9_-]{1,32})?"?\s*$/.exec(ifMatch)
  if (!m) throw new AppError('validation_failed', 'If-Match must be the workflow\'s version, e.g. "3"', { errors: [{ path: 'headers/if-match', message: 'expected a version number' }] })
  return Number(m[1])
}
