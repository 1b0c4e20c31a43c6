// The deploy saga: make n8n match a row, one deploy per workflow at a time across replicas. Row
// first (pending, attempt counted), then n8n (adopt by marker, update, or create), then the row
// (deployed with the n8n id, before activating, so an activation failure cannot orphan it). Every
// n8n failure is an outcome recorded on the row (deployFailure), never a lost workflow: a later
// deploy (PATCH, redeploy, sync) finishes the job. WorkflowService (./workflow-service.ts) runs it
// for creates (with the idempotency key), updates, switches and deletes.
import type { Scope } from '../store/scope.ts'
import type { Store } from '../store/store.ts'
import type * as store from '../store/workflow-store.ts'
import type { WorkflowRow } from '../store/workflow-store.ts'
import { AppError } from '../errors.ts'
import { isN8nError, isN8nNotFound } from './n8n-client.ts'
import type { N8nClient, N8nError, N8nNode, N8nWorkflow } from './n8n-client.ts'
import { identityOf, notOwnedReason } from './ownership.ts'
import { markerFor } from '../lib/marker.ts'
import { n8nName, userTag } from '../lib/user-tag.ts'

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export type WorkflowN8n = Pick<N8nClient, 'listWorkflows' | 'createWorkflow' | 'updateWorkflow' | 'deleteWorkflow' | 'activateWorkflow' | 'deactivateWorkflow' | 'getWorkflow'>

export interface DeployOptions {
  activate?: boolean
  /** Explicit redeploy: a row whose n8n id is not its own workflow gets its own (else it is drift). */
  replaceForeign?: boolean
}

export function notFound (): AppError {
  return new AppError('not_found', 'No workflow with this id')
}

/** What n8n holds under a row's n8n id: the row's own workflow, nothing, or someone else's. */
type Ownership = { kind: 'owned', workflow: N8nWorkflow } | { kind: 'missing' } | { kind: 'foreign', reason: string }

function redeployHint (id: string): string {
  return `POST /workflows/${id}/redeploy gives this row its own n8n workflow`
}

export class WorkflowDeployer {
  private readonly store: Store
  private readonly n8n: WorkflowN8n
  private readonly log: Logger
  private readonly afterN8nCreate: ((row: WorkflowRow, created: N8nWorkflow) => Promise<void> | void) | undefined

  constructor (opts: { store: Store, n8n: WorkflowN8n, logger: Logger, afterN8nCreate?: ((row: WorkflowRow, created: N8nWorkflow) => Promise<void> | void) | undefined }) {
    this.store = opts.store
    this.n8n = opts.n8n
    this.log = opts.logger
    this.afterN8nCreate = opts.afterN8nCreate
  }

  /**
   * One deploy (or delete) per workflow at a time, across replicas. The lock belongs to the
   * workflow's owner (Supabase leases live under the owner's key prefix): a user's own, or, for the
   * service, read from the row.
   */
  async withDeployLock<T> (scope: Scope, id: string, ownerId: string | null, fn: () => Promise<T>): Promise<{ acquired: true, value: T } | { acquired: false }> {
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

  async deployLocked (scope: Scope, id: string, opts: DeployOptions): Promise<WorkflowRow> {
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
  async findByMarker (row: WorkflowRow): Promise<N8nWorkflow | undefined> {
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
  async ownership (row: WorkflowRow, n8nId: string): Promise<Ownership> {
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
  async refuseForeign (scope: Scope, row: WorkflowRow, n8nId: string, reason: string, action: string): Promise<AppError> {
    this.log.warn({ workflowId: row.id, n8nWorkflowId: n8nId, reason, action }, `${action}: the n8n workflow is not this row's; left untouched`)
    await this.store.recordDeployOutcome(scope, row.id, { status: 'missing_in_n8n', lastError: `${reason}. ${redeployHint(row.id)}` })
    return new AppError('conflict', `${reason}. ${redeployHint(row.id)}`)
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
