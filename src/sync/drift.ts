// Drift between the database (the truth) and n8n: a workflow gone from n8n, or whose n8n copy is
// not the row's own, is marked missing_in_n8n; an active flag that differs is set back.
import { AppError, isAppError } from '../errors.ts'
import type { SyncTarget } from '../store/store.ts'
import { isN8nNotFound } from '../services/n8n-client.ts'
import { identityOf, notOwnedReason } from '../services/ownership.ts'
import type { RunState } from './run-state.ts'
import type { DriftEntry, ListedWorkflow, Listing, SyncContext } from './types.ts'

/**
 * Drift: a workflow gone from n8n is marked missing_in_n8n (and this throws); an active flag
 * that differs is set back to the database's value. Answers the repair's error, if any (the
 * workflow's executions are still synced, then it counts as failed).
 */
export async function reconcile (ctx: SyncContext, st: RunState, t: SyncTarget, n8nId: string, flags: Listing | null): Promise<unknown> {
  const listed = await verifyOwn(ctx, st, t, n8nId, flags)
  return await repairActive(ctx, st, t, n8nId, listed.active)
}

/**
 * The row's n8n workflow as the listing (or one GET) shows it, if it is the row's own: else the
 * row becomes drift (missing_in_n8n, last_error saying why) and this throws, so nothing is done
 * to that workflow and none of its executions are counted.
 */
export async function verifyOwn (ctx: SyncContext, st: RunState, t: SyncTarget, n8nId: string, flags: Listing | null): Promise<ListedWorkflow> {
  let listed = flags?.get(n8nId)
  if (listed === undefined) {
    // Not in the listing (renamed in n8n?) or not listed at all: ask for it; a 404 is drift.
    try {
      const wf = await ctx.n8nSlots.run(() => ctx.n8n.getWorkflow(n8nId))
      listed = { active: wf.active, ...identityOf(wf) }
    } catch (err) {
      if (!isN8nNotFound(err)) throw err
      const message = `The workflow is missing in n8n (id ${n8nId}); redeploy it with PATCH or POST /workflows/${t.id}/redeploy`
      await ctx.store.markWorkflowMissing(st.scope, t.id, n8nId, message, st.syncedAt)
      st.drift.push({ workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'missing_in_n8n', repaired: false })
      throw new AppError('not_found', message)
    }
  }
  const reason = notOwnedReason(n8nId, t, listed)
  if (reason !== null) {
    const message = `${reason}; its executions were not counted. POST /workflows/${t.id}/redeploy gives this row its own n8n workflow`
    ctx.log.warn({ workflow_id: t.id, n8n_workflow_id: n8nId, reason }, 'sync: the n8n workflow is not this row\'s; left untouched')
    await ctx.store.markWorkflowMissing(st.scope, t.id, n8nId, message, st.syncedAt)
    st.drift.push({ workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'missing_in_n8n', repaired: false, reason: message })
    throw new AppError('conflict', message)
  }
  return listed
}

/** Supabase is the source of truth: an active flag that differs is set back. Answers the repair's error. */
export async function repairActive (ctx: SyncContext, st: RunState, t: SyncTarget, n8nId: string, active: boolean): Promise<unknown> {
  let driftError: unknown = null
  if (active !== t.active) {
    // Supabase is the source of truth: put n8n back to the database's value.
    const entry: DriftEntry = { workflow_id: t.id, n8n_workflow_id: n8nId, kind: 'active', database_active: t.active, n8n_active: active, repaired: false }
    try {
      await ctx.n8nSlots.run(() => t.active ? ctx.n8n.activateWorkflow(n8nId) : ctx.n8n.deactivateWorkflow(n8nId))
      entry.repaired = true
    } catch (err) {
      entry.error = isAppError(err) ? err.code : 'internal'
      driftError = err
    }
    st.drift.push(entry)
  }
  return driftError
}
