/**
 * Lookups by key, batched: while one batch is in flight, the keys asked for meanwhile wait and go
 * together in the next one (each key once), so that many concurrent callers cost one round trip
 * instead of one each. A caller's lookup is always sent after it asked: never answered from a
 * batch that was already on its way (a lookup that must see everything committed before it asked
 * stays correct). A failed batch fails every caller in it, and so does an answer that does not
 * hold one value per key.
 */
export class BatchedLookup<V> {
  private readonly fetch: (keys: string[]) => Promise<V[]>
  private readonly maxBatch: number
  private waiting = new Map<string, Array<{ resolve: (v: V) => void, reject: (err: unknown) => void }>>()
  private inFlight = false

  /** `fetch` answers the values of the keys, in their order. */
  constructor (fetch: (keys: string[]) => Promise<V[]>, opts: { maxBatch?: number } = {}) {
    this.fetch = fetch
    this.maxBatch = Math.max(1, opts.maxBatch ?? 500)
  }

  get (key: string): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const callers = this.waiting.get(key)
      if (callers) callers.push({ resolve, reject })
      else this.waiting.set(key, [{ resolve, reject }])
      if (!this.inFlight) this.send()
    })
  }

  private send (): void {
    const batch = new Map<string, Array<{ resolve: (v: V) => void, reject: (err: unknown) => void }>>()
    for (const [key, callers] of this.waiting) {
      if (batch.size >= this.maxBatch) break
      batch.set(key, callers)
    }
    for (const key of batch.keys()) this.waiting.delete(key)
    this.inFlight = true
    const keys = [...batch.keys()]
    this.fetch(keys).then((values) => {
      if (values.length !== keys.length) throw new Error(`a batched lookup answered ${values.length} values for ${keys.length} keys`)
      keys.forEach((key, i) => { for (const c of batch.get(key)!) c.resolve(values[i]!) })
    }).catch((err: unknown) => {
      for (const callers of batch.values()) for (const c of callers) c.reject(err)
    }).finally(() => {
      this.inFlight = false
      if (this.waiting.size > 0) this.send()
    })
  }
}
