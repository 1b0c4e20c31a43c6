import type { Scope } from '../store/scope.ts'
import type { Store } from '../store/store.ts'
import type { ExecutionStatsRow, StatsBucket } from '../store/rows.ts'
import { EXECUTION_STATUSES } from '../schemas/stats.ts'
import type { ExecutionStats, ExecutionStatsFigures, ExecutionStatsTotals } from '../schemas/stats.ts'
import { AppError } from '../errors.ts'

// Analytics from the ledger (GET /workflows/{id}/stats, GET /stats): the store answers the
// non-empty buckets of the rollup; this fills the window densely (charts need every bucket) and
// turns duration bins into milliseconds.

const HOUR = 3_600_000
const DAY = 24 * HOUR
const STEP: Record<StatsBucket, number> = { hour: HOUR, day: DAY }
const DEFAULT_WINDOW: Record<StatsBucket, number> = { hour: 24 * HOUR, day: 30 * DAY }
const MAX_WINDOW: Record<StatsBucket, number> = { hour: 31 * DAY, day: 366 * DAY }
const FINAL = ['success', 'error', 'crashed', 'canceled']
const KNOWN = new Set<string>(EXECUTION_STATUSES)

/** The upper bound, in ms, of a duration bin of the rollup (bin = floor(ln(ms + 1) / ln(1.1))). */
export function binUpperMs (bin: number): number {
  return Math.round(1.1 ** (bin + 1) - 1)
}

function floorTo (ms: number, step: number): number {
  return Math.floor(ms / step) * step
}

function invalid (path: string, message: string): AppError {
  return new AppError('validation_failed', message, { errors: [{ path: `querystring/${path}`, message }] })
}

function figures (row: ExecutionStatsRow | undefined): ExecutionStatsFigures {
  const counts = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as ExecutionStatsFigures['counts']
  let total = 0
  for (const [status, n] of Object.entries(row?.counts ?? {})) {
    counts[(KNOWN.has(status) ? status : 'unknown') as keyof typeof counts] += n
    total += n
  }
  const finished = FINAL.reduce((sum, s) => sum + counts[s as keyof typeof counts], 0)
  return {
    total,
    counts,
    success_rate: finished === 0 ? null : counts.success / finished,
    duration_count: row?.duration_count ?? 0,
    avg_duration_ms: row?.avg_duration_ms === null || row?.avg_duration_ms === undefined ? null : Math.round(row.avg_duration_ms * 1000) / 1000,
    p50_duration_ms: row?.p50_bin === null || row?.p50_bin === undefined ? null : binUpperMs(row.p50_bin),
    p95_duration_ms: row?.p95_bin === null || row?.p95_bin === undefined ? null : binUpperMs(row.p95_bin)
  }
}

function totals (row: ExecutionStatsRow | undefined): ExecutionStatsTotals {
  const { p50_duration_ms: _p50, p95_duration_ms: _p95, ...rest } = figures(row)
  return rest
}

export interface StatsRequest {
  bucket: StatsBucket
  since?: string | undefined
  until?: string | undefined
}

export class ExecutionStatsService {
  readonly #store: Store
  readonly #now: () => Date

  constructor (opts: { store: Store, now?: () => Date }) {
    this.#store = opts.store
    this.#now = opts.now ?? (() => new Date())
  }

  /** One workflow's (workflowId) or all of the caller's (null). */
  async stats (scope: Scope, workflowId: string | null, q: StatsRequest): Promise<ExecutionStats> {
    const step = STEP[q.bucket]
    // The current, unfinished bucket is included by default; an explicit until is rounded up.
    const untilMs = q.until === undefined ? this.#now().getTime() : Date.parse(q.until)
    const until = q.until === undefined ? floorTo(untilMs, step) + step : Math.ceil(untilMs / step) * step
    const since = q.since === undefined ? until - DEFAULT_WINDOW[q.bucket] : floorTo(Date.parse(q.since), step)
    if (since >= until) throw invalid('since', 'since must be before until')
    if (until - since > MAX_WINDOW[q.bucket]) {
      throw invalid('since', `the window is at most ${MAX_WINDOW[q.bucket] / DAY} days for ${q.bucket} buckets`)
    }
    const rows = await this.#store.executionStats(scope, { bucket: q.bucket, since: new Date(since), until: new Date(until), workflowId })
    if (rows === undefined) throw new AppError('not_found', 'No workflow with this id')
    const byStart = new Map(rows.filter((r) => r.bucket_start !== null).map((r) => [Date.parse(r.bucket_start!), r]))
    const buckets: ExecutionStats['buckets'] = []
    for (let t = since; t < until; t += step) buckets.push({ start: new Date(t).toISOString(), ...figures(byStart.get(t)) })
    return {
      bucket: q.bucket,
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      workflow_id: workflowId,
      totals: totals(rows.find((r) => r.bucket_start === null)),
      buckets
    }
  }
}
