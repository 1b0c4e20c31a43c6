// The wire: SSE frames, and the notification payload the mvp_workflows trigger sends.
import type { EventOp } from '../../store/rows.ts'
import type { EventName } from './settings.ts'

export interface Notice {
  op: EventOp
  id: string
  user_id: string
  seq: number
}

const OPS = new Set<string>(['INSERT', 'UPDATE', 'DELETE'])

export function eventName (op: EventOp): EventName {
  return op === 'INSERT' ? 'workflow.insert' : op === 'UPDATE' ? 'workflow.update' : 'workflow.delete'
}

/** One SSE event. `data` is JSON text (JSON.stringify never emits a newline without indentation). */
export function sseFrame (id: number | null, event: string, data: string): string {
  return `${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`
}

export function parseNotice (payload: string): Notice | { probe: string } | null {
  let v: unknown
  try {
    v = JSON.parse(payload)
  } catch {
    return null
  }
  if (!v || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  if (typeof o.probe === 'string') return { probe: o.probe }
  if (typeof o.op !== 'string' || !OPS.has(o.op) || typeof o.id !== 'string' || typeof o.user_id !== 'string') return null
  const seq = typeof o.seq === 'number' ? o.seq : Number(o.seq)
  if (!Number.isSafeInteger(seq) || seq <= 0) return null
  return { op: o.op as EventOp, id: o.id, user_id: o.user_id, seq }
}
