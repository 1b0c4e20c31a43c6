// The sync read model: execution history of a workflow, the sync log and its statistics, read
// from the ledger (keyset pagination with opaque cursors). The writes are the sync engine's
// (src/sync/); this service only reads, through the Store.
import type { ExecutionRow, Store, SyncLogRow, SyncStatsRow } from '../store/store.ts'
import type { Scope } from '../store/scope.ts'
import { AppError } from '../errors.ts'
import { decodeCursor as decodeCursorValue, encodeCursor } from '../lib/cursor.ts'
import { isUuid } from '../lib/ids.ts'

export interface ExecutionPage {
  data: Array<Omit<ExecutionRow, 'seq'>>
  next_cursor: string | null
}

export interface SyncLogPage {
  data: Array<Omit<SyncLogRow, 'created_key'>>
  next_cursor: string | null
}

export interface SyncStats {
  hours: number
  since: string
  total: number
  /** successful syncs / all syncs in the window; null without syncs. */
  success_rate: number | null
  by_type: Array<{ sync_type: string, count: number, success_rate: number, avg_duration_ms: number }>
  groups: SyncStatsRow[]
}

export interface SyncHistoryOptions {
  store: Store
  now?: () => Date
}

const ID_RE = /^[0-9]{1,18}$/

export class SyncHistory {
  readonly #store: Store
  readonly #now: () => Date

  constructor (opts: SyncHistoryOptions) {
    this.#store = opts.store
    this.#now = opts.now ?? (() => new Date())
  }

  /** Execution history of one workflow from the ledger, newest first (keyset pagination). */
  async listExecutions (scope: Scope, workflowId: string, q: { limit?: number, cursor?: string | null, status?: string | null } = {}): Promise<ExecutionPage> {
    const limit = Math.min(250, Math.max(1, Math.trunc(q.limit ?? 50)))
    let beforeSeq: string | null = null
    if (q.cursor) {
      const c = decodeCursor(q.cursor)
      if (typeof c.s !== 'string' || !ID_RE.test(c.s)) throw invalidCursor()
      beforeSeq = c.s
    }
    if (!isUuid(workflowId)) throw new AppError('not_found', 'Workflow not found')
    const rows = await this.#store.listExecutionHistory(scope, workflowId, { limit: limit + 1, beforeSeq, status: q.status ?? null })
    if (rows === undefined) throw new AppError('not_found', 'Workflow not found')
    const more = rows.length > limit
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      data: page.map(({ seq: _seq, ...row }) => row),
      next_cursor: more && last ? encodeCursor({ s: last.seq }) : null
    }
  }

  /** Sync history: a user sees their own rows (RLS), the service every row. */
  async listLogs (scope: Scope, q: { limit?: number, cursor?: string | null } = {}): Promise<SyncLogPage> {
    const limit = Math.min(100, Math.max(1, Math.trunc(q.limit ?? 20)))
    let before: { created: string, id: string } | null = null
    if (q.cursor) {
      const c = decodeCursor(q.cursor)
      if (typeof c.c !== 'string' || typeof c.i !== 'string' || !isUuid(c.i) || Number.isNaN(Date.parse(c.c))) throw invalidCursor()
      before = { created: c.c, id: c.i }
    }
    const rows = await this.#store.listSyncLogs(scope, { limit: limit + 1, before })
    const more = rows.length > limit
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      data: page.map(({ created_key: _k, ...row }) => row),
      next_cursor: more && last ? encodeCursor({ c: last.created_key, i: last.id }) : null
    }
  }

  /** Per sync_type and status over the last `hours`: count and average duration; success rates. */
  async stats (scope: Scope, hours: number): Promise<SyncStats> {
    if (!Number.isFinite(hours) || hours <= 0 || hours > 24 * 366) {
      throw new AppError('validation_failed', 'hours must be between 0 and 8784', { errors: [{ path: 'hours', message: 'out of range' }] })
    }
    const since = new Date(this.#now().getTime() - hours * 3600_000)
    const groups = await this.#store.syncStats(scope, since)
    const byType = new Map<string, { count: number, success: number, weighted: number }>()
    let total = 0
    let success = 0
    for (const g of groups) {
      total += g.count
      if (g.status === 'success') success += g.count
      const t = byType.get(g.sync_type) ?? { count: 0, success: 0, weighted: 0 }
      t.count += g.count
      if (g.status === 'success') t.success += g.count
      t.weighted += g.avg_duration_ms * g.count
      byType.set(g.sync_type, t)
    }
    return {
      hours,
      since: since.toISOString(),
      total,
      success_rate: total === 0 ? null : success / total,
      by_type: [...byType].map(([syncType, t]) => ({
        sync_type: syncType,
        count: t.count,
        success_rate: t.success / t.count,
        avg_duration_ms: Math.round(t.weighted / t.count)
      })),
      groups
    }
  }
}

function decodeCursor (cursor: string): Record<string, unknown> {
  const v = decodeCursorValue(cursor)
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
  throw invalidCursor()
}

function invalidCursor (): AppError {
  return new AppError('validation_failed', 'Invalid cursor', { errors: [{ path: 'cursor', message: 'is not a cursor this endpoint returned' }] })
}
