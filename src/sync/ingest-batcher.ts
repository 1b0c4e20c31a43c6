// Group commit of a sync's ledger writes (README.md, "CONCURRENCY AND WRITES").
import type { IngestJob, IngestResult, Store } from '../store/store.ts'
import type { Scope } from '../store/scope.ts'

export type Outcome<R> = { ok: true, result: R } | { ok: false, error: unknown }

/**
 * Jobs written together (`batch`: one transaction, all or nothing); when that fails, each job
 * alone (`one`), so one job's error never fails another's: the error belongs to one of them (or
 * to all, if the database is down). A single job is written alone at once. Results in job order.
 */
export async function batchThenEach<J, R> (jobs: J[], batch: (jobs: J[]) => Promise<R[]>, one: (job: J) => Promise<R>): Promise<Array<Outcome<R>>> {
  if (jobs.length > 1) {
    try {
      return (await batch(jobs)).map((result) => ({ ok: true as const, result }))
    } catch {
      // retried one by one below
    }
  }
  const out: Array<Outcome<R>> = []
  for (const j of jobs) {
    try {
      out.push({ ok: true, result: await one(j) })
    } catch (error) {
      out.push({ ok: false, error })
    }
  }
  return out
}

/** Consecutive groups of at most `maxCount` items whose sizes add up to at most `maxSize` (a larger item alone). */
export function boundedGroups<T> (items: T[], maxCount: number, maxSize: number, sizeOf: (item: T) => number): T[][] {
  const groups: T[][] = []
  let size = 0
  for (const item of items) {
    const last = groups.at(-1)
    const n = sizeOf(item)
    if (last === undefined || last.length >= maxCount || size + n > maxSize) {
      groups.push([item])
      size = n
    } else {
      last.push(item)
      size += n
    }
  }
  return groups
}

/**
 * Group commit of ingest jobs of one sync (one scope): a job that finds a free lane is written at
 * once; jobs arriving while the lanes are busy are written together by the next free lane, in one
 * transaction and one round trip (ingest_executions_batch). A failed batch is retried job by job,
 * so one workflow's error never fails another's. A workflow has at most one job queued at a time
 * (its pages are written in order), so batching never reorders a workflow's pages.
 */
export class IngestBatcher {
  readonly #store: Store
  readonly #scope: Scope
  readonly #syncedAt: Date
  readonly #max: number
  readonly #lanes: number
  #busy = 0
  #queue: Array<{ job: IngestJob, resolve: (r: IngestResult) => void, reject: (err: unknown) => void }> = []

  constructor (store: Store, scope: Scope, syncedAt: Date, max: number, lanes: number) {
    this.#store = store
    this.#scope = scope
    this.#syncedAt = syncedAt
    this.#max = Math.max(1, max)
    this.#lanes = Math.max(1, lanes)
  }

  ingest (job: IngestJob): Promise<IngestResult> {
    return new Promise<IngestResult>((resolve, reject) => {
      this.#queue.push({ job, resolve, reject })
      this.#pump()
    })
  }

  /** Jobs written together, all or nothing; on an error, each job alone. Results in job order. */
  writeAll (jobs: IngestJob[]): Promise<Array<Outcome<IngestResult>>> {
    return batchThenEach(jobs,
      (js) => this.#store.ingestExecutionsBatch(this.#scope, js, this.#syncedAt),
      (j) => this.#store.ingestExecutions(this.#scope, j.workflowId, j.executions, this.#syncedAt, j.options ?? {}))
  }

  #pump (): void {
    while (this.#busy < this.#lanes && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#max)
      this.#busy++
      void this.writeAll(batch.map((b) => b.job)).then((rs) => {
        rs.forEach((r, i) => {
          const b = batch[i]
          if (!b) return
          if (r.ok) b.resolve(r.result)
          else b.reject(r.error)
        })
      }, (err: unknown) => {
        for (const b of batch) b.reject(err)
      }).finally(() => {
        this.#busy--
        this.#pump()
      })
    }
  }
}
