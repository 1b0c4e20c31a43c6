import { createHash } from 'node:crypto'
import type { Database } from '../db/database.ts'
import { inScope } from '../store/scope.ts'
import type { Scope } from '../store/scope.ts'
import * as store from '../store/workflow-store.ts'
import type { WorkflowRow } from '../store/workflow-store.ts'
import type { Workflow } from '../schemas/workflow.ts'
import { AppError } from './errors.ts'
import { isN8nNotFound } from './n8n-client.ts'
import type { N8nClient, N8nNode, N8nWorkflow } from './n8n-client.ts'

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export type WorkflowN8n = Pick<N8nClient, 'listWorkflows' | 'createWorkflow' | 'updateWorkflow' | 'deleteWorkflow' | 'activateWorkflow' | 'deactivateWorkflow' | 'getWorkflow'>

export interface WorkflowServiceOptions {
  db: Database
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
  data: Workflow[]
  next_cursor: string | null
}

// The marker left in n8n's staticData: it names the row a workflow belongs to, so a deploy retried
// after a crash adopts the workflow an earlier attempt created instead of creating a second one.
export const MARKER_KEY = 'workflow_sync'

const ADVISORY_DEPLOY = 741_853

export function n8nName (userId: string, name: string): string {
  return `[USR-${userId.replace(/-/g, '').slice(0, 8)}] ${name}`
}

export function encodeCursor (row: { created_at: string, id: string }): string {
  return Buffer.from(JSON.stringify([row.created_at, row.id])).toString('base64url')
}

export function decodeCursor (cursor: string): { createdAt: string, id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' &&
      !Number.isNaN(Date.parse(v[0])) && /^[0-9a-f-]{36}$/i.test(v[1])) {
      return { createdAt: v[0], id: v[1] }
    }
  } catch {}
  throw new AppError('validation_failed', 'The cursor is not one this service issued', { errors: [{ path: 'querystring/cursor', message: 'invalid cursor' }] })
}

export function publicWorkflow (row: WorkflowRow): Workflow {
  const { deploy_attempts: _ignored, ...rest } = row
  return rest
}

function userIdOf (scope: Scope): string {
  if (scope.kind !== 'user') throw new Error('a user scope is required')
  return scope.userId
}

function notFound (): AppError {
  return new AppError('not_found', 'No workflow with this id')
}

export class WorkflowService {
  private readonly db: Database
  private readonly n8n: WorkflowN8n
  private readonly log: Logger
  private readonly ttlHours: number
  private readonly afterN8nCreate: WorkflowServiceOptions['afterN8nCreate']

  constructor (opts: WorkflowServiceOptions) {
    this.db = opts.db
    this.n8n = opts.n8n
    this.log = opts.logger
    this.ttlHours = opts.idempotencyTtlHours ?? 24
    this.afterN8nCreate = opts.afterN8nCreate
  }

  async list (scope: Scope, q: { limit: number, cursor?: string | undefined, status?: string | undefined, active?: boolean | undefined }): Promise<ListResult> {
    const userId = userIdOf(scope)
    const filter: store.ListFilter = { userId, limit: q.limit + 1 }
    if (q.cursor) filter.after = decodeCursor(q.cursor)
    if (q.status) filter.status = q.status
    if (q.active !== undefined) filter.active = q.active
    const rows = await inScope(this.db, scope, (tx) => store.listWorkflows(tx, filter))
    const page = rows.slice(0, q.limit)
    const last = page[page.length - 1]
    return {
      data: page.map(publicWorkflow),
      next_cursor: rows.length > q.limit && last ? encodeCursor(last) : null
    }
  }

  async get (scope: Scope, id: string): Promise<Workflow> {
    const row = await inScope(this.db, scope, (tx) => store.getWorkflow(tx, scope.kind === 'user' ? scope.userId : null, id))
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
    const started = await inScope(this.db, scope, async (tx) => {
      if (idempotencyKey) {
        const existing = await store.claimIdempotencyKey(tx, userId, idempotencyKey, requestHash, this.ttlHours)
        if (existing) {
          if (existing.request_hash !== requestHash) {
            throw new AppError('conflict', 'This Idempotency-Key was already used with a different request body')
          }
          if (existing.status_code !== null) {
            return { replay: { statusCode: existing.status_code, body: existing.response as Workflow } }
          }
          if (existing.workflow_id) {
            const row = await store.getWorkflow(tx, userId, existing.workflow_id)
            if (row) return { row }
          }
        }
      }
      const row = await store.insertWorkflow(tx, {
        userId,
        name: input.name,
        description: input.description ?? null,
        nodes: input.nodes,
        connections: input.connections,
        settings: input.settings,
        active: false
      })
      if (idempotencyKey) await store.linkIdempotencyKey(tx, userId, idempotencyKey, row.id)
      return { row, wantActive: input.active }
    })
    if ('replay' in started && started.replay) {
      return { statusCode: started.replay.statusCode, body: started.replay.body, replayed: true }
    }
    const row = started.row as WorkflowRow
    const deployed = await this.deploy(scope, row.id, { activate: ('wantActive' in started && started.wantActive) || row.active })
    const body = publicWorkflow(deployed)
    if (idempotencyKey) {
      await inScope(this.db, scope, (tx) => store.completeIdempotencyKey(tx, userId, idempotencyKey, 201, body))
    }
    return { statusCode: 201, body, replayed: false }
  }

  /**
   * Makes n8n match the row: adopt or create when the row has no n8n workflow, update it when it
   * has one (recreate when n8n lost it), then mirror `active`. n8n being down leaves the row
   * `pending` with last_error, so a later deploy (PATCH, redeploy, sync) finishes the job.
   * One deploy per workflow at a time, across replicas.
   */
  async deploy (scope: Scope, id: string, opts: { activate?: boolean } = {}): Promise<WorkflowRow> {
    const result = await this.db.withAdvisoryLock(ADVISORY_DEPLOY, id, () => this.deployLocked(scope, id, opts))
    if (!result.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
    return result.value
  }

  private async deployLocked (scope: Scope, id: string, opts: { activate?: boolean }): Promise<WorkflowRow> {
    const ownerFilter = scope.kind === 'user' ? scope.userId : null
    const row = await inScope(this.db, scope, async (tx) => {
      const r = await store.getWorkflow(tx, ownerFilter, id, true)
      if (r) await store.countDeployAttempt(tx, id)
      return r
    })
    if (!row) throw notFound()
    const wantActive = opts.activate ?? row.active
    const definition = {
      name: n8nName(row.user_id, row.name),
      nodes: row.nodes as unknown as N8nNode[],
      connections: row.connections,
      settings: row.settings
    }
    let n8nId = row.n8n_workflow_id
    try {
      if (n8nId) {
        try {
          await this.n8n.updateWorkflow(n8nId, definition)
        } catch (err) {
          if (!isN8nNotFound(err)) throw err
          this.log.warn({ workflowId: id, n8nWorkflowId: n8nId }, 'workflow missing in n8n; recreating it')
          n8nId = null
        }
      }
      if (!n8nId) {
        // deploy_attempts counts this attempt too: above 1, an earlier attempt may have created it.
        const adopted = row.deploy_attempts > 0 ? await this.findByMarker(row) : undefined
        if (adopted) {
          this.log.info({ workflowId: id, n8nWorkflowId: adopted.id }, 'adopted the workflow an earlier deploy created')
          n8nId = adopted.id
          await this.n8n.updateWorkflow(n8nId, definition)
        } else {
          const created = await this.n8n.createWorkflow({ ...definition, staticData: { [MARKER_KEY]: { row_id: row.id, user_id: row.user_id } } })
          n8nId = created.id
          if (this.afterN8nCreate) await this.afterN8nCreate(row, created)
        }
      }
      // Record the n8n id before activating, so an activation failure cannot orphan it.
      await inScope(this.db, scope, (tx) => store.recordDeployOutcome(tx, id, { status: 'deployed', n8nWorkflowId: n8nId, lastError: null }))
      if (wantActive) await this.n8n.activateWorkflow(n8nId)
      else if (row.active) await this.n8n.deactivateWorkflow(n8nId)
      const done = await inScope(this.db, scope, (tx) => store.recordDeployOutcome(tx, id, { status: 'deployed', lastError: null, active: wantActive }))
      if (!done) throw notFound()
      return done
    } catch (err) {
      if (!(err instanceof AppError) || err.code === 'not_found') throw err
      // A refusal by n8n (invalid definition, no trigger) is the user's to fix: status error.
      // n8n being unreachable is not: the row stays pending and a later deploy retries.
      const rejected = err.code === 'n8n_rejected'
      const activationFailed = n8nId !== null && wantActive
      const status = n8nId !== null ? 'deployed' : (rejected ? 'error' : 'pending')
      const lastError = activationFailed && rejected
        ? `n8n could not activate the workflow: ${err.message}`
        : `${rejected ? 'n8n rejected the workflow' : 'n8n is unavailable'}: ${err.message}`
      const saved = await inScope(this.db, scope, (tx) => store.recordDeployOutcome(tx, id, {
        status,
        lastError,
        ...(n8nId !== null ? { n8nWorkflowId: n8nId, active: false } : {})
      }))
      this.log.warn({ workflowId: id, code: err.code }, 'deploy did not complete')
      if (!saved) throw notFound()
      return saved
    }
  }

  private async findByMarker (row: WorkflowRow): Promise<N8nWorkflow | undefined> {
    const name = n8nName(row.user_id, row.name)
    let cursor: string | undefined
    do {
      const page = await this.n8n.listWorkflows({ name, limit: 250, ...(cursor ? { cursor } : {}) })
      for (const w of page.data) {
        const marker = (w.staticData as Record<string, unknown> | null | undefined)?.[MARKER_KEY] as { row_id?: unknown } | undefined
        if (marker?.row_id === row.id) return w
      }
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    return undefined
  }

  async update (scope: Scope, id: string, changes: store.WorkflowChanges, ifMatch?: string): Promise<Workflow> {
    const userId = userIdOf(scope)
    const expected = ifMatch === undefined ? undefined : parseVersion(ifMatch)
    const updated = await inScope(this.db, scope, async (tx) => {
      const r = await store.updateWorkflowDefinition(tx, userId, id, changes, expected)
      if (!r && expected !== undefined && await store.getWorkflow(tx, userId, id)) {
        throw new AppError('precondition_failed', 'The workflow changed since that version; fetch it again and retry with its current version')
      }
      return r
    })
    if (!updated) throw notFound()
    // Make n8n match; a workflow that was never deployed or went missing is deployed now.
    return publicWorkflow(await this.deploy(scope, id))
  }

  async setActive (scope: Scope, id: string, active: boolean): Promise<Workflow> {
    const userId = userIdOf(scope)
    const row = await inScope(this.db, scope, (tx) => store.getWorkflow(tx, userId, id))
    if (!row) throw notFound()
    let n8nId = row.n8n_workflow_id
    if (!n8nId || row.status !== 'deployed') {
      const deployed = await this.deploy(scope, id, { activate: false })
      if (deployed.status !== 'deployed' || !deployed.n8n_workflow_id) {
        throw new AppError(deployed.status === 'error' ? 'n8n_rejected' : 'n8n_unavailable', deployed.last_error ?? 'The workflow could not be deployed to n8n')
      }
      n8nId = deployed.n8n_workflow_id
    }
    try {
      if (active) await this.n8n.activateWorkflow(n8nId)
      else await this.n8n.deactivateWorkflow(n8nId)
    } catch (err) {
      if (isN8nNotFound(err)) {
        await inScope(this.db, scope, (tx) => store.recordDeployOutcome(tx, id, { status: 'missing_in_n8n', lastError: 'The workflow is missing in n8n; redeploy it' }))
        throw new AppError('conflict', 'The workflow is missing in n8n; redeploy it with POST /workflows/{id}/redeploy')
      }
      throw err
    }
    const saved = await inScope(this.db, scope, async (tx) => {
      const r = row.active === active ? await store.getWorkflow(tx, userId, id) : await store.setActive(tx, userId, id, active)
      if (r && r.last_error) return store.recordDeployOutcome(tx, id, { status: 'deployed', lastError: null })
      return r
    })
    if (!saved) throw notFound()
    return publicWorkflow(saved)
  }

  /** n8n first (its 404 counts as gone), then the row. */
  async delete (scope: Scope, id: string): Promise<void> {
    const userId = userIdOf(scope)
    const row = await inScope(this.db, scope, (tx) => store.getWorkflow(tx, userId, id))
    if (!row) throw notFound()
    const lock = await this.db.withAdvisoryLock(ADVISORY_DEPLOY, id, async () => {
      const n8nId = row.n8n_workflow_id ?? (row.deploy_attempts > 0 ? (await this.findByMarker(row))?.id : undefined)
      if (n8nId) await this.n8n.deleteWorkflow(n8nId)
      const deleted = await inScope(this.db, scope, (tx) => store.deleteWorkflow(tx, userId, id))
      if (!deleted) throw notFound()
    })
    if (!lock.acquired) throw new AppError('conflict', 'A deploy of this workflow is in progress')
  }
}

export function parseVersion (ifMatch: string): number {
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(ifMatch)
  if (!m) throw new AppError('validation_failed', 'If-Match must be the workflow\'s version, e.g. "3"', { errors: [{ path: 'headers/if-match', message: 'expected a version number' }] })
  return Number(m[1])
}
