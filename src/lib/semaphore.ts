/** At most `slots` callers run at once; the rest wait their turn in order. */
export class Semaphore {
  private free: number
  private readonly waiters: Array<() => void> = []

  constructor (slots: number) {
    this.free = slots
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => { this.waiters.push(resolve) })
    try {
      return await fn()
    } finally {
      const next = this.waiters.shift()
      if (next) next()
      else this.free++
    }
  }

  get waiting (): number {
    return this.waiters.length
  }
}
