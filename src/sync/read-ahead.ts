/**
 * The pages of `pages`, in order; the next one is requested before a page is handed out when
 * `ahead(page)` says it will be needed, so its round trip overlaps the caller's work on this one.
 * Asking for the next page always gets it (read ahead or not); ending early drops a page read
 * ahead (its failure included).
 */
export async function * readAhead<T> (pages: AsyncGenerator<T, void, undefined>, ahead: (page: T) => boolean): AsyncGenerator<T, void, undefined> {
  try {
    let next = pages.next()
    for (;;) {
      const r = await next
      if (r.done === true) return
      const early = ahead(r.value)
      if (early) {
        next = pages.next()
        next.catch(() => {}) // awaited on the next turn, or dropped with the generator
      }
      yield r.value
      if (!early) next = pages.next()
    }
  } finally {
    await pages.return(undefined).catch(() => {})
  }
}
