/**
 * At most `slots` callers run at once; the rest wait their turn in order (a freed slot goes to
 * the longest waiter, never to a newcomer). `slots` may be a function, read at every acquire and
 * release, for a limit that can change at run time (EventHub's `catchUpConcurrency`): a raised
 * limit lets waiters in on the next release, a lowered one lets none in until enough have left.
 */
export class Semaphore {
  private running = 0
  private readonly waiters: Array<() => void> = []
  private readonly limit: () => number

  constructor (slots: number | (() => number)) {
    this.limit = typeof slots === 'number' ? () => slots : slots
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    if (this.waiters.length === 0 && this.running < this.limit()) this.running++
    else await new Promise<void>((resolve) => { this.waiters.push(resolve) })
    try {
      return await fn()
    } finally {
      this.running--
      while (this.waiters.length > 0 && this.running < this.limit()) {
        this.running++
        this.waiters.shift()!()
      }
    }
  }

  get waiting (): number {
    return this.waiters.length
  }
}
