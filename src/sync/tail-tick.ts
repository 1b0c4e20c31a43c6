// One live-tail tick (README.md, "The live tail": what a tick reads, the frontier, open rows,
// writes) and the state the ticks of a leader carry: the frontier, the open runs, the ids seen
// final by the previous tick, what n8n's workflows carry (ownership). LiveTail (live-tail.ts)
// drives it while it holds the leader lock.
import { isAppError } from '../errors.ts'
import { USER_TAG_PREFIX } from '../lib/user-tag.ts'
import { serviceScope } from '../store/scope.ts'
import type { ExecutionInput, LiveTailWrite, TailIdentity } from '../store/store.ts'
import { isN8nNotFound } from '../services/n8n-client.ts'
import { identityOf } from '../services/ownership.ts'
import type { N8nExecution } from '../services/n8n-client.ts'
import { executionId, FINAL, NewestFirst, PAGE, toInput } from './execution-ids.ts'
import type { LiveTailOptions, TailStatus } from './live-tail.ts'

interface Open {
  workflowId: string
  status: string
  /** A row owns its workflow (else tracked only so that it is not sent again). */
  owned: boolean
  checks: number
  nextCheckAt: number
}

const RUNNING_LIST_RETRY_MS = 10 * 60_000
const OPEN_LOAD_LIMIT = 10_000
// How long what n8n's copy of a workflow carries (name, marker) is trusted before it is asked again.
const IDENTITY_TTL_MS = 10 * 60_000

export class TailTicker {
  /** The tail's options: store, n8n, logger, tuning, callbacks. */
  readonly #opts: LiveTailOptions
  readonly #interval: number
  readonly #now: () => number
  readonly #stopping: () => boolean

  // one leadership's state (reset by lead())
  #frontier: bigint | null = null
  #pendingTop: bigint | null = null
  #finalSeen = new Set<string>()
  #open = new Map<string, Open>()
  /** n8n workflow id → its name and marker (null: n8n has no such workflow), and when it was read. */
  #identities = new Map<string, { ident: TailIdentity | null, at: number }>()
  #lastGoodTickStart: number | null = null
  #lastFence = 0
  // this replica's
  #lastTickAt: number | null = null
  #runningUnsupportedUntil = 0
  #runningSupport: TailStatus['running_list'] = 'unknown'
  #lastFallbackSync = 0

  constructor (opts: LiveTailOptions, interval: number, now: () => number, stopping: () => boolean) {
    this.#opts = opts
    this.#interval = interval
    this.#now = now
    this.#stopping = stopping
  }

  get frontier (): bigint | null { return this.#frontier }
  get lastGoodTickStart (): number | null { return this.#lastGoodTickStart }
  get lastTickAt (): number | null { return this.#lastTickAt }
  get runningSupport (): TailStatus['running_list'] { return this.#runningSupport }

  /** A new leadership: the claimed frontier, nothing in memory yet. */
  lead (frontier: string | null): void {
    this.#lastFence = this.#now()
    this.#frontier = frontier === null ? null : BigInt(frontier)
    this.#pendingTop = this.#frontier
    this.#finalSeen = new Set()
    this.#open = new Map()
    this.#identities = new Map()
    this.#lastGoodTickStart = null
  }

  /** The frontier a first start stored (C0). */
  setFrontier (frontier: string): void {
    this.#frontier = BigInt(frontier)
    this.#pendingTop = this.#frontier
  }

  /** A fenced write just confirmed the epoch. */
  fenceConfirmed (): void {
    this.#lastFence = this.#now()
  }

  /** An n8n call, counted (metrics). */
  async call<T> (fn: () => Promise<T>): Promise<T> {
    this.#opts.onN8nCall?.()
    return await fn()
  }

  async loadOpen (): Promise<void> {
    const rows = await this.#opts.store.liveTailOpenExecutions(serviceScope, OPEN_LOAD_LIMIT)
    const now = this.#now()
    for (const r of rows) this.#open.set(r.n8n_execution_id, { workflowId: r.n8n_workflow_id, status: r.status, owned: true, checks: 0, nextCheckAt: now })
  }

  /**
   * Ownership (src/services/ownership.ts): the tail writes an execution only to the row whose
   * marker n8n's copy of the workflow carries. Read for every `[USR-` workflow when a replica
   * starts leading (one listing, ⌈n/250⌉ calls), then per workflow id when an unknown one shows up
   * or its entry is older than IDENTITY_TTL_MS.
   */
  async loadIdentities (): Promise<void> {
    const now = this.#now()
    this.#opts.onN8nCall?.()
    for await (const wf of this.#opts.n8n.iterateWorkflows({ name: USER_TAG_PREFIX, limit: PAGE })) {
      if (this.#stopping()) return
      const c = this.#identities.get(wf.id)
      if (c === undefined || c.at < now) this.#identities.set(wf.id, { ident: toIdentity(wf), at: now })
    }
  }

  async #identitiesFor (ids: Set<string>, counted: <T>(fn: () => Promise<T>) => Promise<T>): Promise<Record<string, TailIdentity>> {
    const now = this.#now()
    const out: Record<string, TailIdentity> = {}
    const missing: string[] = []
    for (const id of ids) {
      const c = this.#identities.get(id)
      if (c === undefined || now - c.at > IDENTITY_TTL_MS) missing.push(id)
      else if (c.ident !== null) out[id] = c.ident
    }
    let next = 0
    const lane = async (): Promise<void> => {
      for (let id = missing[next++]; id !== undefined; id = missing[next++]) {
        const wid = id
        try {
          const ident = toIdentity(await counted(() => this.#opts.n8n.getWorkflow(wid)))
          this.#identities.set(wid, { ident, at: now })
          out[wid] = ident
        } catch (err) {
          if (!isN8nNotFound(err)) throw err
          this.#identities.set(wid, { ident: null, at: now })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(16, missing.length) }, lane))
    return out
  }

  async tick (epoch: string, started: number): Promise<void> {
    const F = this.#frontier ?? -1n
    let calls = 0
    const counted = async <T>(fn: () => Promise<T>): Promise<T> => { calls++; return await this.call(fn) }

    // 1. R, before L (README.md, "THE FRONTIER": the order makes it exact).
    const running = await this.#runningList(counted)

    // 2. L: newest first down to the frontier, as many pages as it takes.
    const listed: N8nExecution[] = []
    let top: bigint | null = null
    const order = new NewestFirst()
    let cursor: string | undefined
    for (;;) {
      const page = await counted(() => this.#opts.n8n.listExecutions(cursor === undefined ? { limit: PAGE } : { limit: PAGE, cursor }))
      let reached = false
      for (const e of page.data) {
        const id = order.next(e.id)
        top ??= id
        if (id <= F) {
          reached = true
          break
        }
        listed.push(e)
      }
      if (reached || page.nextCursor === null) break
      cursor = page.nextCursor
    }

    // 3. What is new: running entries first (older snapshot), then the list (its answer wins).
    const items: ExecutionInput[] = []
    const inRunning = new Set<string>()
    for (const e of running ?? []) {
      executionId(e.id)
      inRunning.add(e.id)
      if (this.#open.get(e.id)?.status !== e.status) items.push(toInput(e))
    }
    const inList = new Set<string>()
    const finalNow = new Set<string>()
    for (const e of listed) {
      inList.add(e.id)
      if (FINAL.has(e.status)) {
        finalNow.add(e.id)
        if (this.#finalSeen.has(e.id)) continue // listed final by the previous tick, and written then
      } else if (this.#open.get(e.id)?.status === e.status) {
        continue
      }
      items.push(toInput(e))
    }

    // 4. Open runs that left both lists: ask for them by id (with backoff).
    const vanished: LiveTailWrite['vanished'] = []
    const now = this.#now()
    const due: Array<[string, Open]> = []
    for (const [id, o] of this.#open) {
      if (inRunning.has(id) || inList.has(id)) {
        o.checks = 0
        o.nextCheckAt = now
        continue
      }
      if (!o.owned) {
        this.#open.delete(id) // another workflow's run: never asked for
        continue
      }
      if (o.nextCheckAt <= now && due.length < (this.#opts.recheckPerTick ?? 50)) due.push([id, o])
    }
    for (const [id, o] of due) {
      try {
        const e = await counted(() => this.#opts.n8n.getExecution(id))
        if (FINAL.has(e.status) || e.status !== o.status) items.push(toInput(e))
        if (!FINAL.has(e.status)) {
          o.checks++
          o.nextCheckAt = now + Math.min(this.#opts.recheckMaxMs ?? 60_000, this.#interval * 2 ** o.checks)
        }
      } catch (err) {
        if (!isN8nNotFound(err)) throw err
        vanished.push({ workflowId: o.workflowId, id })
      }
    }

    // 5. One fenced transaction: the items (of workflows whose n8n copy is a row's own) and the
    // new frontier.
    const wfIds = new Set<string>()
    for (const e of items) if (e.workflowId) wfIds.add(e.workflowId)
    for (const v of vanished) wfIds.add(v.workflowId)
    const identities = wfIds.size === 0 ? {} : await this.#identitiesFor(wfIds, counted)
    const nextF = this.#pendingTop !== null && this.#pendingTop > F ? this.#pendingTop : null
    const write: LiveTailWrite = { items, vanished, state: nextF === null ? {} : { frontier: nextF.toString() }, identities }
    let ingested = 0
    if (items.length > 0 || vanished.length > 0 || nextF !== null || now - this.#lastFence >= this.#fenceCheckMs()) {
      const r = await this.#opts.store.liveTailIngest(serviceScope, epoch, write, new Date(now))
      this.#lastFence = this.#now()
      ingested = r.inserted + r.updated
      const owned = new Set(r.owned)
      for (const e of items) {
        if (FINAL.has(e.status)) {
          this.#open.delete(e.id)
        } else {
          const o = this.#open.get(e.id)
          if (o) o.status = e.status
          else this.#open.set(e.id, { workflowId: e.workflowId ?? '', status: e.status, owned: owned.has(e.workflowId ?? ''), checks: 0, nextCheckAt: now })
        }
      }
      for (const v of vanished) this.#open.delete(v.id)
      if (r.frontier !== null) this.#frontier = BigInt(r.frontier)
    }
    if (top !== null && (this.#pendingTop === null || top > this.#pendingTop)) this.#pendingTop = top
    this.#finalSeen = finalNow
    this.#lastGoodTickStart = started
    this.#lastTickAt = this.#now()
    this.#opts.onTick?.({ ok: true, durationMs: this.#lastTickAt - started, n8nCalls: calls, ingested })

    if (running === null && this.#now() - this.#lastFallbackSync >= (this.#opts.fallbackSyncMs ?? 10 * 60_000)) {
      this.#lastFallbackSync = this.#now()
      await this.#opts.backfill()
    }
  }

  #fenceCheckMs (): number {
    return this.#opts.fenceCheckMs ?? Math.min(5000, 3 * this.#interval)
  }

  /** All pages of the running list; null when this n8n cannot list running executions. */
  async #runningList (counted: <T>(fn: () => Promise<T>) => Promise<T>): Promise<N8nExecution[] | null> {
    if (this.#now() < this.#runningUnsupportedUntil) return null
    const out: N8nExecution[] = []
    let cursor: string | undefined
    try {
      for (;;) {
        const page = await counted(() => this.#opts.n8n.listExecutions(cursor === undefined ? { status: 'running', limit: PAGE } : { status: 'running', limit: PAGE, cursor }))
        for (const e of page.data) {
          // A final status here: this n8n ignores the filter, so the list is not what we need.
          if (FINAL.has(e.status)) return this.#unsupported('n8n ignored status=running')
          out.push(e)
        }
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
    } catch (err) {
      if (isAppError(err) && err.code === 'n8n_rejected') return this.#unsupported(err.message)
      throw err
    }
    this.#runningSupport = 'supported'
    return out
  }

  #unsupported (why: string): null {
    this.#runningUnsupportedUntil = this.#now() + RUNNING_LIST_RETRY_MS
    this.#runningSupport = 'unsupported'
    this.#opts.logger.warn({ reason: why }, 'live tail: n8n cannot list running executions; a full sync also runs every few minutes')
    return null
  }
}

function toIdentity (wf: { name: string, staticData?: Record<string, unknown> | null }): TailIdentity {
  const i = identityOf(wf)
  return { name: i.name, row_id: i.markerRowId, user_id: i.markerUserId }
}
