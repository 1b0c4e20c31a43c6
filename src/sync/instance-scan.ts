// /sync/all as ONE newest-first pass over the instance's execution list (no workflowId), down to
// the lowest stop point of the workflows in it, instead of one list per workflow. Same guarantees
// as the per-workflow pass: README.md, "INSTANCE SCAN". One InstanceScan per sync run; its fields
// are the scan's state (buffers, the write round in flight, how far down the scan has come).
import { executionJson } from '../store/rows.ts'
import type { IngestResult, ScanJob, SyncTarget } from '../store/store.ts'
import { notOwnedReason } from '../services/ownership.ts'
import type { N8nExecutionPage } from '../services/n8n-client.ts'
import { repairActive, verifyOwn } from './drift.ts'
import { FINAL, isExecutionId, NewestFirst, PAGE, toInput } from './execution-ids.ts'
import { batchThenEach, boundedGroups } from './ingest-batcher.ts'
import { readAhead } from './read-ahead.ts'
import { failWorkflow } from './run-state.ts'
import type { RunState } from './run-state.ts'
import type { Listing, Snapshot, SyncContext } from './types.ts'
import { recheckOpen, syncWorkflow } from './workflow-pass.ts'

/** Fresh workflows join the instance scan at up to this many times the latency of their own lists (see #plan). */
const SCAN_WAVES_FACTOR = 4n
/** Idle workflows whose stop point is raised per call. */
const RAISE_CHUNK = 5000

type ScanOptions = { ceiling: string, started_before?: string }

/** One workflow's state in an instance scan. */
interface ScanWf {
  t: SyncTarget
  n8nId: string
  /** The effective stop point; -1 for a workflow that never completed a pass (read everything). */
  floor: bigint
  /** From the running list (executionJson): written first, in the workflow's first job. */
  running: string[]
  runningPending: boolean
  /** Items read and not written yet, as executionJson strings (one small string each). */
  buf: string[]
  /** Ids of open executions seen in this pass (list or running list): no re-check by id needed. */
  openSeen: Set<string> | null
  /** Anything read for it in this pass: its pass ends with an ingest (else it is idle). */
  touched: boolean
  /** It has open ledger rows: its pass ends with an ingest, which lists them for re-checking. */
  hasOpen: boolean
  /** The scan went below its stop point: its pass is complete (written or idle). */
  passed: boolean
  /** n8n's active flag, once its n8n copy was verified to be the row's own. */
  n8nActive: boolean | null
  error: unknown
}

export class InstanceScan {
  readonly #ctx: SyncContext
  readonly #st: RunState
  readonly #snap: Snapshot
  /** The drift listing, arriving while the scan reads. */
  readonly #flags: Promise<Listing | null>
  readonly #ceiling: bigint
  /** n8n without a running list: the time-window fallback (README.md). */
  readonly #fallback: boolean
  readonly #cutoff: number
  readonly #options: ScanOptions
  readonly #states = new Map<string, ScanWf>()
  /** Highest stop point first: as the scan goes down, a prefix of this list is complete. */
  #order: ScanWf[] = []
  /** How many of #order are complete. */
  #ptr = 0
  /** The scan's depth: the lowest stop point of the workflows in it (-1: the bottom). */
  #stop: bigint | null = null
  readonly #ids = new NewestFirst()
  /** Fallback: the newest id seen that started before the cutoff. */
  #cutoffId: bigint | null = null
  /** Items in all buffers. */
  #buffered = 0
  /** The write round in flight (one at a time). */
  #round: Promise<void> = Promise.resolve()
  readonly #rechecks: Array<Promise<void>> = []
  readonly #idle: ScanWf[] = []
  #verified: Promise<void> = Promise.resolve()
  #pageIndex = 0
  #scanError: unknown = null

  constructor (ctx: SyncContext, st: RunState, snap: Snapshot, flags: Promise<Listing | null>) {
    this.#ctx = ctx
    this.#st = st
    this.#snap = snap
    this.#flags = flags
    this.#ceiling = BigInt(snap.ceiling)
    this.#fallback = snap.running === null
    this.#cutoff = this.#fallback ? st.syncedAt.getTime() - ctx.graceMs : 0
    this.#options = { ceiling: snap.ceiling }
    if (this.#fallback) this.#options.started_before = new Date(this.#cutoff).toISOString()
  }

  async run (targets: SyncTarget[]): Promise<void> {
    const { scanSet, direct } = this.#plan(targets)
    const directTasks = direct.map((t) => this.#ctx.work.run(() => this.#direct(t)))
    let open: Set<string>
    try {
      open = new Set(scanSet.length === 0 ? [] : await this.#ctx.store.workflowsWithOpenRows(this.#st.scope, scanSet.map((t) => t.id)))
    } catch (err) {
      for (const t of scanSet) failWorkflow(this.#ctx.log, this.#st, t.id, err)
      await Promise.all(directTasks)
      return
    }
    this.#load(scanSet, open)
    // Ownership, meanwhile (the listing arrives while the scan reads): each workflow's n8n copy
    // must be the row's own before anything of it is written; #flush waits for this.
    this.#verified = this.#verifyAll()
    // Then drift of the active flag.
    const drift = this.#repairDrift()
    await this.#read()
    await this.#round
    await drift
    await Promise.all([...this.#rechecks, ...directTasks])
    if (this.#scanError === null) await this.#raiseIdle()
    this.#finish()
  }

  /** Which workflows the scan reads, and which never-synced ones get their own list; sets the depth. */
  #plan (targets: SyncTarget[]): { scanSet: SyncTarget[], direct: SyncTarget[] } {
    const scanSet: SyncTarget[] = []
    const fresh: SyncTarget[] = []
    for (const t of targets) (t.execution_floor_id === null ? fresh : scanSet).push(t)
    let stop: bigint | null = null
    for (const t of scanSet) {
      const f = BigInt(t.execution_floor_id ?? '0')
      if (stop === null || f < stop) stop = f
    }
    // A workflow that never completed a pass needs its whole history. In the scan that is the
    // instance's list down to its oldest execution: ids are never reused, so at most
    // stop/250 more pages (ceiling/250 without other workflows), against n list calls on their
    // own, in ⌈n/concurrency⌉ waves. The scan is taken when it costs no more n8n calls and at
    // most SCAN_WAVES_FACTOR times the waves' latency: per-workflow lists are bound by the cost
    // of each call (HTTP, parsing, one ledger write each), not by their waves (the first full
    // sync, bench:backfill: 10,000 lists took 22-50 s against a 3.2 s latency floor; the scan of
    // the same 100,000 executions reads 401 pages).
    let direct: SyncTarget[] = []
    if (fresh.length > 0) {
      const extraPages = (stop ?? this.#ceiling) / BigInt(PAGE) + 1n
      const waves = BigInt(Math.ceil(fresh.length / this.#ctx.concurrency))
      if (extraPages <= waves || (extraPages <= BigInt(fresh.length) && extraPages <= SCAN_WAVES_FACTOR * waves)) {
        scanSet.push(...fresh)
        stop = -1n
      } else {
        direct = fresh
      }
    }
    this.#stop = stop
    return { scanSet, direct }
  }

  /** A never-synced workflow on its own list, as in a user's sync (once the drift listing is in). */
  async #direct (t: SyncTarget): Promise<void> {
    let workflows: Listing | null
    try {
      workflows = await this.#flags
    } catch (err) {
      failWorkflow(this.#ctx.log, this.#st, t.id, err)
      return
    }
    await syncWorkflow(this.#ctx, this.#st, t, { ...this.#snap, workflows })
  }

  #load (scanSet: SyncTarget[], open: Set<string>): void {
    for (const t of scanSet) {
      const n8nId = t.n8n_workflow_id
      if (n8nId === null) continue
      const running = this.#snap.running?.get(n8nId) ?? []
      this.#states.set(n8nId, {
        t,
        n8nId,
        floor: t.execution_floor_id === null ? -1n : BigInt(t.execution_floor_id),
        running: running.map((e) => executionJson(toInput(e))),
        runningPending: running.length > 0,
        buf: [],
        openSeen: running.length > 0 ? new Set(running.map((e) => e.id)) : null,
        touched: running.length > 0,
        hasOpen: open.has(t.id),
        passed: false,
        n8nActive: null,
        error: null
      })
    }
    this.#order = [...this.#states.values()].sort((a, b) => (a.floor > b.floor ? -1 : a.floor < b.floor ? 1 : 0))
  }

  async #verifyAll (): Promise<void> {
    let flags: Listing | null
    try {
      flags = await this.#flags
    } catch (err) {
      for (const w of this.#states.values()) w.error ??= err
      return
    }
    await Promise.all([...this.#states.values()].map(async (w) => {
      const listed = flags?.get(w.n8nId)
      if (listed !== undefined && notOwnedReason(w.n8nId, w.t, listed) === null) {
        w.n8nActive = listed.active
        return
      }
      await this.#ctx.work.run(async () => {
        try {
          w.n8nActive = (await verifyOwn(this.#ctx, this.#st, w.t, w.n8nId, flags)).active
        } catch (err) {
          w.error ??= err
        }
      })
    }))
  }

  async #repairDrift (): Promise<void> {
    await this.#verified
    await Promise.all([...this.#states.values()].map(async (w) => {
      const active = w.n8nActive
      if (w.error !== null || active === null || active === w.t.active) return
      await this.#ctx.work.run(async () => {
        try {
          const err = await repairActive(this.#ctx, this.#st, w.t, w.n8nId, active)
          if (err !== null) w.error ??= err
        } catch (err) {
          w.error ??= err
        }
      })
    }))
  }

  /** The scan itself: page after page down to the stop point; a failure is the scan's error. */
  async #read (): Promise<void> {
    if (this.#order.length === 0) return
    // The next page is requested while this one is processed and written, when this one shows
    // the scan goes on (its oldest item is above the stop point and more follow).
    const goesOn = (p: N8nExecutionPage): boolean => {
      const tail = p.data.at(-1)
      return p.nextCursor !== null && tail !== undefined && isExecutionId(tail.id) && (this.#stop === null || BigInt(tail.id) > this.#stop)
    }
    try {
      for await (const page of readAhead(this.#ctx.n8n.iterateExecutionPages({ limit: PAGE }), goesOn)) {
        const complete = await this.#page(page)
        if (this.#ctx.hooks.afterScanPage) {
          await this.#round
          await this.#ctx.hooks.afterScanPage(this.#pageIndex)
        }
        this.#pageIndex++
        if (complete) break
      }
    } catch (err) {
      this.#scanError = err
      this.#ctx.log.warn({ err, pages: this.#pageIndex }, 'sync: instance scan failed')
    }
  }

  /** One page: buffered per workflow; what it completed (or what fills memory) goes out. Answers whether the scan is done. */
  async #page (page: N8nExecutionPage): Promise<boolean> {
    const stop = this.#stop
    let reachedStop = false
    const full: ScanWf[] = []
    for (const e of page.data) {
      const id = this.#ids.next(e.id)
      if (stop !== null && id <= stop) {
        reachedStop = true
        break
      }
      if (this.#fallback && (this.#cutoffId === null || id > this.#cutoffId) && e.startedAt !== null && Date.parse(e.startedAt) < this.#cutoff) this.#cutoffId = id
      const w = this.#states.get(e.workflowId)
      // Not ours (or not in this sync), already below its own stop point, or failed.
      if (w === undefined || id <= w.floor || w.error !== null) continue
      w.buf.push(executionJson(toInput(e)))
      w.touched = true
      this.#buffered++
      if (!FINAL.has(e.status)) (w.openSeen ??= new Set()).add(e.id)
      if (w.buf.length === PAGE) full.push(w)
    }
    const complete = reachedStop || page.nextCursor === null
    const items: Array<[ScanWf, boolean]> = []
    // Complete: every execution above its stop point has been read.
    const lastId = this.#ids.last
    while (this.#ptr < this.#order.length) {
      const w = this.#order[this.#ptr] as ScanWf
      if (!complete && (lastId === null || w.floor < lastId)) break
      this.#ptr++
      w.passed = true
      if (w.error !== null) continue
      if (w.touched || w.hasOpen) items.push([w, true])
      else this.#idle.push(w)
    }
    const finals = new Set(items.map(([w]) => w))
    if (this.#buffered - items.reduce((n, [w]) => n + w.buf.length, 0) >= this.#ctx.scanBufferLimit) {
      // Memory bound: every buffer goes out as a partial chunk (the stop points stay).
      for (const w of this.#order.slice(this.#ptr)) if (w.buf.length > 0 && !finals.has(w)) items.push([w, false])
    } else {
      for (const w of full) if (!finals.has(w) && w.buf.length >= PAGE) items.push([w, false])
    }
    await this.#flush(items)
    return complete
  }

  /** Writes these workflows' buffers (final: and ends their pass); one round at a time. */
  async #flush (items: Array<[ScanWf, boolean]>): Promise<void> {
    if (items.length === 0) return
    // Nothing is written for a workflow before its n8n copy is known to be the row's own.
    await this.#verified
    // Rounds are sequential, so a workflow's chunks commit in order and its final one (which
    // moves its stop point) last; the next page is read while a round is written. The jobs are
    // built once the previous round is done: a workflow whose chunk failed there gets no final
    // job (its stop point must not pass executions that were not written).
    await this.#round
    const jobs: Array<{ w: ScanWf, job: ScanJob }> = []
    for (const [w, final] of items) {
      if (w.error !== null) {
        this.#buffered -= w.buf.length
        w.buf = []
        continue
      }
      const pending = w.runningPending ? [...w.running, ...w.buf] : w.buf
      w.runningPending = false
      this.#buffered -= w.buf.length
      w.buf = []
      jobs.push({ w, job: { workflowId: w.t.id, items: pending, final } })
    }
    if (jobs.length > 0) this.#round = this.#writeRound(jobs)
  }

  /** One round of scan jobs: batched transactions; results, failures and re-checks per workflow. */
  async #writeRound (jobs: Array<{ w: ScanWf, job: ScanJob }>): Promise<void> {
    // Bounded transactions: at most ingestBatchMax workflows and ~20 pages of executions each.
    const groups = boundedGroups(jobs, this.#ctx.batchMax, 20 * PAGE, (j) => j.job.items.length)
    const write = (g: typeof jobs): Promise<IngestResult[]> =>
      this.#ctx.store.ingestScanBatch(this.#st.scope, g.map((j) => j.job), this.#st.syncedAt, this.#options)
    const one = async (j: (typeof jobs)[number]): Promise<IngestResult> => {
      const [result] = await write([j])
      if (result === undefined) throw new Error('no result')
      return result
    }
    // Two at a time: a round has each workflow at most once, so its groups are independent.
    let next = 0
    const lane = async (): Promise<void> => {
      for (let g = groups[next++]; g !== undefined; g = groups[next++]) {
        const rs = await batchThenEach(g, write, one)
        rs.forEach((r, i) => {
          const j = g[i]
          if (!j) return
          if (!r.ok) {
            j.w.error ??= r.error
            return
          }
          this.#st.ingested += r.result.inserted + r.result.updated
          if (j.job.final && r.result.recheck.length > 0) this.#recheck(j.w, r.result.recheck)
        })
      }
    }
    await Promise.all([lane(), lane()])
  }

  /** Open rows below a completed workflow's stop point, except those this scan just saw. */
  #recheck (w: ScanWf, recheck: string[]): void {
    const seen = w.openSeen
    const ids = seen === null ? recheck : recheck.filter((id) => !seen.has(id))
    if (ids.length === 0) return
    this.#rechecks.push(this.#ctx.work.run(async () => {
      try {
        await recheckOpen(this.#ctx, this.#st, w.t, ids)
      } catch (err) {
        w.error ??= err
      }
    }))
  }

  /**
   * Idle workflows (nothing new, no active run, no open row): their pass is complete too. Their
   * stop point is raised (in workflow_scan_floors) once it lags enough to cost the next scan pages.
   */
  async #raiseIdle (): Promise<void> {
    const C = this.#ceiling
    const cutoffId = this.#cutoffId
    const raiseTo = this.#fallback ? (cutoffId === null ? null : (cutoffId < C ? cutoffId : C)) : C
    if (raiseTo === null) return
    const lagging = this.#idle.filter((w) => w.error === null && w.floor >= 0n && raiseTo - w.floor > this.#ctx.scanLagIds).map((w) => w.t.id)
    try {
      for (let i = 0; i < lagging.length; i += RAISE_CHUNK) {
        await this.#ctx.store.raiseScanFloors(this.#st.scope, lagging.slice(i, i + RAISE_CHUNK), raiseTo.toString())
      }
    } catch (err) {
      // Only an optimisation: the next scan reads deeper, nothing is lost.
      this.#ctx.log.warn({ err }, 'sync: raising idle stop points failed')
    }
  }

  #finish (): void {
    for (const w of this.#states.values()) {
      // A workflow whose pass did not complete before the scan failed shares the scan's error.
      const err = w.error ?? (this.#scanError !== null && !w.passed ? this.#scanError : null)
      if (err !== null) {
        this.#ctx.log.warn({ err, workflow_id: w.t.id, n8n_workflow_id: w.n8nId }, 'sync: workflow failed')
        failWorkflow(this.#ctx.log, this.#st, w.t.id, err)
      } else {
        this.#st.synced++
      }
    }
  }
}
