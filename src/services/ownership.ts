// Whether an n8n workflow is a row's own: the service acts on (updates, activates, deactivates,
// deletes, counts the executions of) an n8n workflow only when n8n's copy carries the row's
// staticData marker and its owner's `[USR-xxxxxxxx]` name prefix. A row's n8n_workflow_id alone is
// not proof: an admin's update (or, before the grants were tightened, a user's own) can point it
// at anyone's workflow.

import { readMarker } from '../lib/marker.ts'
import { hasUserTag, userTag } from '../lib/user-tag.ts'

export interface RowIdentity {
  id: string
  user_id: string
}

/** The bits of an n8n workflow the check needs (kept per workflow in a sync's drift listing). */
export interface N8nIdentity {
  name: string
  markerRowId: string | null
  markerUserId: string | null
}

export function identityOf (wf: { name: string, staticData?: Record<string, unknown> | null }): N8nIdentity {
  const m = readMarker(wf.staticData)
  return { name: wf.name, markerRowId: m.rowId, markerUserId: m.userId }
}

/**
 * Why the n8n workflow `n8nId` is not this row's, or null when it is. The reason never names the
 * other row or user (it may be someone else's).
 */
export function notOwnedReason (n8nId: string, row: RowIdentity, wf: N8nIdentity): string | null {
  let why: string | null = null
  if (wf.markerRowId === null) why = 'it carries no workflow_sync marker'
  else if (wf.markerRowId !== row.id || wf.markerUserId?.toLowerCase() !== row.user_id.toLowerCase()) why = 'its workflow_sync marker names another row'
  else if (!hasUserTag(wf.name, row.user_id)) why = `its name does not start with the owner's ${userTag(row.user_id)} prefix`
  if (why === null) return null
  return `The n8n workflow ${n8nId} that this row names is not this row's (${why}); nothing was done to it in n8n`
}
