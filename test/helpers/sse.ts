// A small Server-Sent Events reader on fetch (what a browser front end does), and a condition
// wait for tests and the chaos script.

export interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

export interface SseStream {
  status: number
  /** Every event received (unless an onEvent callback takes them). */
  events: SseEvent[]
  /** Resolves when the server ends the stream (or it is closed). */
  done: Promise<void>
  ended: boolean
  close(): void
}

export async function openSse (base: string, headers: Record<string, string>, lastEventId?: string | number, onEvent?: (e: SseEvent) => void): Promise<SseStream> {
  const controller = new AbortController()
  const h: Record<string, string> = { ...headers, accept: 'text/event-stream' }
  if (lastEventId !== undefined) h['last-event-id'] = String(lastEventId)
  const res = await fetch(`${base}/events`, { headers: h, signal: controller.signal })
  const stream: SseStream = {
    status: res.status,
    events: [],
    ended: false,
    done: Promise.resolve(),
    close () { controller.abort() }
  }
  stream.done = (async () => {
    if (!res.body) return
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true })
        let i: number
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i)
          buf = buf.slice(i + 2)
          let id: string | undefined
          let event = 'message'
          const data: string[] = []
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4)
            else if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data.push(line.slice(6))
          }
          if (data.length > 0 || id !== undefined) {
            const e = { id, event, data: data.join('\n') }
            if (onEvent) onEvent(e)
            else stream.events.push(e)
          }
        }
      }
    } catch {
      // aborted by close(), or the connection dropped
    } finally {
      stream.ended = true
    }
  })()
  return stream
}

/** Polls cond every 50 ms until it holds; throws with `what` after timeoutMs. */
export async function waitFor (cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let ok = false
    try {
      ok = await cond()
    } catch {
      ok = false
    }
    if (ok) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
