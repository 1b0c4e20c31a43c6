// One workflow's pass: its list newest first down to its stop point, page by page through the
// sync's group commit, the floor moving with the page that completes the pass (README.md, "THE
// STOP POINT" and "CRASH SAFETY"); open rows below the floor are re-checked by id.
import type { ExecutionInput, IngestOptions, SyncTarget } from '../store/store.ts'
import { isN8nNotFound } from '../services/n8n-client.ts'
import { reconcile } from './drift.ts'
import { NewestFirst, PAGE, toInput } from './execution-ids.ts'
import { failWorkflow } from './run-state.ts'
import type { RunState } from './run-state.ts'
import type { Snapshot, SyncContext } from './types.ts'

/** Drift, then the pass; the workflow counts as synced or failed. */
export async function syncWorkflow (ctx: SyncContext, st: RunState, t: SyncTarget, snap: Snapshot): Promise<void> {
  const n8nId = t.n8n_workflow_id
  if (n8nId === null) return
  try {
    const driftError = await reconcile(ctx, st, t, n8nId, snap.workflows)
    await ingestWorkflow(ctx, st, t, n8nId, snap)
    if (driftError !== null) throw driftError
    st.synced++
  } catch (err) {
    ctx.log.warn({ err, workflow_id: t.id, n8n_workflow_id: n8nId }, 'sync: workflow failed')
    failWorkflow(ctx.log, st, t.id, err)
  }
}

async function ingestWorkflow (ctx: SyncContext, st: RunState, t: SyncTarget, n8nId: string, snap: Snapshot): Promise<void> {
  const floor = t.execution_floor_id === null ? null : BigInt(t.execution_floor_id)
  const running = (snap.running?.get(n8nId) ?? []).map(toInput)
  let pageIndex = 0
  let changed = false
  const order = new NewestFirst()
  let recheck: string[] = []
  let finalFloor: string | null = t.execution_floor_id

  const pages = ctx.n8n.iterateExecutionPages({ workflowId: n8nId, limit: PAGE })
  for (;;) {
    const next = await ctx.n8nSlots.run(() => pages.next())
    if (next.done === true) break
    const page = next.value
    const above: ExecutionInput[] = []
    let reachedFloor = false
    for (const e of page.data) {
      const id = order.next(e.id)
      if (floor !== null && id <= floor) {
        reachedFloor = true
        break
      }
      above.push(toInput(e))
    }
    const complete = reachedFloor || page.nextCursor === null
    // The running snapshot is older than this page: it goes first so the page's answer wins.
    const batch = pageIndex === 0 && running.length > 0 ? [...running, ...above] : above
    const options: IngestOptions = {}
    if (complete) {
      options.complete = true
      options.ceiling = snap.ceiling
      // Nothing new in one page: keep the stored floor and write nothing.
      options.advance = changed || pageIndex > 0
      if (snap.running === null) options.started_before = new Date(st.syncedAt.getTime() - ctx.graceMs).toISOString()
    }
    if (batch.length > 0 || complete) {
      const r = await st.batcher.ingest({ workflowId: t.id, executions: batch, options })
      st.ingested += r.inserted + r.updated
      changed ||= r.workflow_written
      if (complete) {
        recheck = r.recheck
        finalFloor = r.floor
      }
    }
    await ctx.hooks.afterPage?.(t.id, pageIndex)
    if (complete) {
      await pages.return(undefined)
      break
    }
    pageIndex++
  }

  if (recheck.length > 0 && finalFloor !== null) await recheckOpen(ctx, st, t, recheck)
}

/** Open rows below the stop point (e.g. a run waiting for days): asked for one by one. */
export async function recheckOpen (ctx: SyncContext, st: RunState, t: SyncTarget, ids: string[]): Promise<void> {
  const found: ExecutionInput[] = []
  const vanished: string[] = []
  for (const id of ids) {
    try {
      found.push(toInput(await ctx.n8nSlots.run(() => ctx.n8n.getExecution(id))))
    } catch (err) {
      if (!isN8nNotFound(err)) throw err
      vanished.push(id)
    }
  }
  const r = await ctx.store.ingestExecutions(st.scope, t.id, found, st.syncedAt, { vanished })
  st.ingested += r.inserted + r.updated
}
