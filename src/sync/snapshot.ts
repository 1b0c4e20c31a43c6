// What one sync reads from n8n before any workflow is listed: the ceiling, THEN the running list
// (the order is what makes the stop point exact: README.md, "THE STOP POINT"), and the active
// flags for drift.
import { isAppError } from '../errors.ts'
import { USER_TAG_PREFIX, userTag } from '../lib/user-tag.ts'
import type { Scope } from '../store/scope.ts'
import type { SyncTarget } from '../store/store.ts'
import { identityOf } from '../services/ownership.ts'
import type { N8nExecution } from '../services/n8n-client.ts'
import { executionId, FINAL, PAGE } from './execution-ids.ts'
import type { Listing, Snapshot, SyncLogger, SyncN8n, SyncType } from './types.ts'

const RUNNING_LIST_RETRY_MS = 10 * 60_000
// A subset sync of a few workflows asks for each one instead of listing the user's workflows.
const DIRECT_LOOKUP_MAX = 3

export interface SnapshotParts {
  /** The drift listing (null: look each workflow up). */
  workflows: Promise<Listing | null>
  executions: Promise<Omit<Snapshot, 'workflows'>>
}

/** Reads snapshots for one engine; remembers for a while that this n8n has no running list. */
export class SnapshotReader {
  readonly #n8n: SyncN8n
  readonly #log: SyncLogger
  readonly #now: () => Date
  readonly #graceMs: number
  #runningUnsupportedUntil = 0

  constructor (n8n: SyncN8n, log: SyncLogger, now: () => Date, graceMs: number) {
    this.#n8n = n8n
    this.#log = log
    this.#now = now
    this.#graceMs = graceMs
  }

  async read (scope: Scope, kind: SyncType, targets: SyncTarget[]): Promise<Snapshot> {
    const parts = this.parts(scope, kind, targets)
    const [workflows, { ceiling, running }] = await Promise.all([parts.workflows, parts.executions])
    return { ceiling, running, workflows }
  }

  /** The two halves, each as soon as it is read (the instance scan starts before the listing is in). */
  parts (scope: Scope, kind: SyncType, targets: SyncTarget[]): SnapshotParts {
    const direct = kind === 'workflows' && targets.length <= DIRECT_LOOKUP_MAX
    const workflows = direct ? Promise.resolve(null) : this.#activeFlags(scope.kind === 'user' ? userTag(scope.userId) : USER_TAG_PREFIX)
    const executions = (async () => {
      // One page, not one item: besides C (its newest id) it shows the runs that are not final
      // yet but not hidden either. n8n hides a run only once it is in its in-memory active list,
      // and `status=running` lists stored status `running` only, so a run still `new` (or just
      // `running`) now can be in neither list when R is read and hidden when the workflow is
      // listed: below C, it would be skipped for good. (Seen with a real n8n under a burst of
      // webhook runs: test-e2e/service.test.ts.) They join the running snapshot, so they become
      // open ledger rows, tracked until final.
      const top = await this.#n8n.listExecutions({ limit: PAGE })
      for (const e of top.data) executionId(e.id)
      const ceiling = top.data[0]?.id ?? '0'
      const running = await this.#runningExecutions()
      if (running !== null) {
        for (const e of top.data) {
          if (FINAL.has(e.status)) continue
          const list = running.get(e.workflowId)
          if (!list) running.set(e.workflowId, [e])
          else if (!list.some((x) => x.id === e.id)) list.push(e)
        }
      }
      return { ceiling, running }
    })()
    return { workflows, executions }
  }

  async #activeFlags (nameFilter: string): Promise<Listing> {
    const flags: Listing = new Map()
    // Only the flag and the marker are kept, not the workflow (nodes can be large).
    for await (const wf of this.#n8n.iterateWorkflows({ name: nameFilter, limit: PAGE })) flags.set(wf.id, { active: wf.active, ...identityOf(wf) })
    return flags
  }

  async #runningExecutions (): Promise<Map<string, N8nExecution[]> | null> {
    if (this.#now().getTime() < this.#runningUnsupportedUntil) return null
    const byWorkflow = new Map<string, N8nExecution[]>()
    try {
      for await (const page of this.#n8n.iterateExecutionPages({ status: 'running', limit: PAGE })) {
        for (const e of page.data) {
          executionId(e.id)
          // A final status here means this n8n ignores the filter: the list is not what we need.
          if (FINAL.has(e.status)) return this.#runningUnsupported('n8n ignored status=running')
          const list = byWorkflow.get(e.workflowId)
          if (list) list.push(e)
          else byWorkflow.set(e.workflowId, [e])
        }
      }
    } catch (err) {
      // n8n < 1.113 validates the filter (error | success | waiting) and answers 400.
      if (isAppError(err) && err.code === 'n8n_rejected') return this.#runningUnsupported(err.message)
      throw err
    }
    return byWorkflow
  }

  #runningUnsupported (why: string): null {
    this.#runningUnsupportedUntil = this.#now().getTime() + RUNNING_LIST_RETRY_MS
    this.#log.warn({ reason: why, grace_ms: this.#graceMs }, 'sync: n8n cannot list running executions; using the time-window fallback')
    return null
  }
}
