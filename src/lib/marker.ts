// The marker left in n8n's staticData, `{ workflow_sync: { row_id, user_id } }`: it names the row
// a workflow belongs to, so a deploy retried after a crash adopts the workflow an earlier attempt
// created instead of creating a second one, and nothing is ever done to an n8n workflow that does
// not carry it (services/ownership.ts).

export const MARKER_KEY = 'workflow_sync'

export interface Marker {
  rowId: string | null
  userId: string | null
}

/** The staticData that marks an n8n workflow as the row's. */
export function markerFor (row: { id: string, user_id: string }): Record<string, unknown> {
  return { [MARKER_KEY]: { row_id: row.id, user_id: row.user_id } }
}

/** The marker's fields as n8n's copy carries them; null for each one missing or not a string. */
export function readMarker (staticData: Record<string, unknown> | null | undefined): Marker {
  const marker = staticData?.[MARKER_KEY]
  const m = marker !== null && typeof marker === 'object' ? marker as Record<string, unknown> : null
  return {
    rowId: typeof m?.row_id === 'string' ? m.row_id : null,
    userId: typeof m?.user_id === 'string' ? m.user_id : null
  }
}
