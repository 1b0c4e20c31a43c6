// GET /workflows answers kept in memory, per user and query, as the bytes that were sent. An entry
// is served only while the user's list stamp (Store.workflowListStamp) is the one read before its
// page was: the stamp moves with every change to one of the user's rows, wherever it was made, so
// a served entry is exactly the page a fresh read would give (README: The list cache). Requests
// that miss with the same stamp share one read (the same argument: a page read after the stamp
// holds for any request whose own stamp, read after it arrived, is that one).
// This file must not import Fastify.

export interface CachedListAnswer {
  /** The user's list stamp read before the page was. */
  readonly stamp: string
  /** The answer's JSON, UTF-8. */
  readonly json: Buffer
  /** The page's `id:row_version,...` (its ETag's source), or null. */
  readonly tag: string | null
}

export interface WorkflowListCacheStats {
  entries: number
  bytes: number
  /** Answered from memory. */
  hits: number
  /** Read from the database (by this request, or by another one it waited for: `shared`). */
  misses: number
  /** Misses that waited for a read another request had started under the same stamp. */
  shared: number
}

export class WorkflowListCache {
  readonly maxBytes: number
  readonly maxEntries: number
  // Map order is the LRU order: a hit moves its entry to the young end.
  readonly #entries = new Map<string, CachedListAnswer>()
  // Reads on their way, per key: the stamp they were started under and the answer to come.
  readonly #reading = new Map<string, { stamp: string, answer: Promise<CachedListAnswer> }>()
  #bytes = 0
  readonly #stats = { hits: 0, misses: 0, shared: 0 }

  constructor (opts: { maxBytes: number, maxEntries?: number }) {
    this.maxBytes = Math.max(0, opts.maxBytes)
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000)
  }

  get enabled (): boolean {
    return this.maxBytes > 0
  }

  /** The entry for `key` if it was stored under this stamp; an entry of an older stamp is dropped. */
  get (key: string, stamp: string): CachedListAnswer | undefined {
    const hit = this.#entries.get(key)
    if (hit === undefined || hit.stamp !== stamp) {
      if (hit !== undefined) this.remove(key, hit)
      this.#stats.misses++
      return undefined
    }
    this.#stats.hits++
    this.#entries.delete(key)
    this.#entries.set(key, hit)
    return hit
  }

  /**
   * The answer for `key` under `stamp`: kept, or being read under the same stamp by another
   * request (then shared), or read now by `read` (which must start after the stamp was read) and kept.
   */
  async load (key: string, stamp: string, read: () => Promise<Omit<CachedListAnswer, 'stamp'>>): Promise<CachedListAnswer> {
    const hit = this.get(key, stamp)
    if (hit !== undefined) return hit
    const pending = this.#reading.get(key)
    if (pending !== undefined && pending.stamp === stamp) {
      this.#stats.shared++
      return await pending.answer
    }
    const answer = read().then((a) => ({ stamp, ...a }))
    const entry = { stamp, answer }
    this.#reading.set(key, entry)
    try {
      const done = await answer
      this.set(key, done)
      return done
    } finally {
      if (this.#reading.get(key) === entry) this.#reading.delete(key)
    }
  }

  /** Keeps an answer (the oldest go beyond the bounds; one larger than a tenth of them is not kept). */
  set (key: string, answer: CachedListAnswer): void {
    if (!this.enabled || answer.json.length > this.maxBytes / 10) return
    const old = this.#entries.get(key)
    if (old !== undefined) this.remove(key, old)
    this.#entries.set(key, answer)
    this.#bytes += answer.json.length
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.maxBytes && this.#entries.size <= this.maxEntries) break
      this.remove(k, v)
    }
  }

  stats (): WorkflowListCacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, ...this.#stats }
  }

  private remove (key: string, answer: CachedListAnswer): void {
    this.#entries.delete(key)
    this.#bytes -= answer.json.length
  }
}
