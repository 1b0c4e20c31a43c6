// What one sync run accumulates, and how a failed workflow is recorded in it.
import { isAppError } from '../errors.ts'
import type { Scope } from '../store/scope.ts'
import type { IngestBatcher } from './ingest-batcher.ts'
import type { DriftEntry, SyncError, SyncLogger } from './types.ts'

export interface RunState {
  scope: Scope
  syncedAt: Date
  batcher: IngestBatcher
  errors: SyncError[]
  drift: DriftEntry[]
  synced: number
  failed: number
  ingested: number
}

/** Counts the workflow as failed with an error the answer may show (unexpected ones are logged, not shown). */
export function failWorkflow (log: SyncLogger, st: RunState, workflowId: string, err: unknown): void {
  st.failed++
  if (isAppError(err)) {
    st.errors.push({ workflow_id: workflowId, code: err.code, message: err.message })
    return
  }
  const pg = err as { code?: unknown }
  if (pg && pg.code === 'P0002') {
    st.errors.push({ workflow_id: workflowId, code: 'not_found', message: 'Workflow not found (deleted during the sync?)' })
    return
  }
  log.error({ err, workflow_id: workflowId }, 'sync: unexpected error')
  st.errors.push({ workflow_id: workflowId, code: 'internal', message: 'Internal error while syncing this workflow' })
}
