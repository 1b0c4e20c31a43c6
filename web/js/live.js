// Live changes of the caller's workflows.
// Postgres/embedded mode: GET /events read with fetch (EventSource cannot send Authorization),
// reconnecting with Last-Event-ID so that the missed events are replayed (catch-up) — the README's
// reader, with connection states for the dot. Supabase mode: Supabase Realtime postgres_changes.
// States: 'connecting' | 'live' | 'reconnecting' | 'error' (with a reason).

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms)
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
})

export function watchEvents ({ getToken, onUpsert, onDelete, onReload, onState, signal, baseDelayMs = 1000 }) {
  let lastEventId = null
  let retryMs = baseDelayMs
  function handle (ev) {
    if (ev.id !== undefined) lastEventId = ev.id
    switch (ev.event) {
      case 'ready':
      case 'reset': return onReload()
      case 'workflow.insert':
      case 'workflow.update': return onUpsert(JSON.parse(ev.data))
      case 'workflow.delete': return onDelete(JSON.parse(ev.data).id)
    }
  }
  async function connectOnce () {
    const headers = { authorization: `Bearer ${await getToken()}`, accept: 'text/event-stream' }
    if (lastEventId !== null) headers['last-event-id'] = lastEventId
    const res = await fetch('/events', { headers, signal, cache: 'no-store' })
    if (!res.ok) {
      let detail = ''
      try { const p = await res.json(); detail = p.detail ? `${p.title}: ${p.detail}` : p.title } catch {}
      const after = Number(res.headers.get('retry-after'))
      throw Object.assign(new Error(detail || `GET /events: HTTP ${res.status}`), { status: res.status, waitMs: after > 0 ? after * 1000 : undefined })
    }
    onState('live')
    // A stream that opens after a drop replays what was missed; a first one starts with `ready`.
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += value
      let end
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end)
        buf = buf.slice(end + 2)
        const ev = { event: 'message', data: '' }
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue // heartbeat
          const i = line.indexOf(':')
          const field = i < 0 ? line : line.slice(0, i)
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '')
          if (field === 'id') ev.id = val
          else if (field === 'event') ev.event = val
          else if (field === 'data') ev.data += (ev.data ? '\n' : '') + val
          else if (field === 'retry') retryMs = Number(val) || retryMs
        }
        if (ev.data) {
          try { handle(ev) } catch (err) { console.error('event handler', err) }
        }
      }
    }
  }
  ;(async () => {
    let failures = 0
    onState('connecting')
    while (!signal?.aborted) {
      let waitMs
      try {
        await connectOnce()
        failures = 0
        if (signal?.aborted) return
        onState('reconnecting', 'The live stream ended; reconnecting')
      } catch (err) {
        if (signal?.aborted) return
        failures++
        waitMs = err.waitMs
        const fatal = err.status === 401 || err.status === 403 || err.status === 503
        onState(fatal || failures >= 3 ? 'error' : 'reconnecting', err.message)
      }
      await sleep(waitMs ?? Math.min(30_000, retryMs * 2 ** Math.min(failures, 5)) * (0.5 + Math.random() / 2), signal)
    }
  })()
}

export function watchRealtime ({ client, token, onUpsert, onDelete, onReload, onState, signal }) {
  // A pasted token (no Supabase Auth session): Realtime checks RLS with it.
  if (token) client.realtime.setAuth(token)
  onState('connecting')
  const channel = client.channel('workflow-sync-dashboard')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'mvp_workflows' }, (change) => {
      if (change.eventType === 'DELETE') onDelete(change.old.id)
      else onUpsert(change.new)
    })
    .subscribe((status, err) => {
      // No replay in Realtime: every (re)subscription reloads the list (the catch-up).
      // A lost socket is a CHANNEL_ERROR too (its cause the transport's Event), and supabase-js
      // reconnects by itself: grey. Red when Realtime itself refused (the reply is the cause).
      if (status === 'SUBSCRIBED') { onState('live'); onReload() } else if (status === 'CHANNEL_ERROR') {
        const refused = (err?.cause !== undefined && !(err.cause instanceof Event)) || /mismatch/.test(err?.message ?? '')
        onState(refused ? 'error' : 'reconnecting', err?.message ?? 'Realtime channel error; retrying')
      } else if (status === 'TIMED_OUT' || status === 'CLOSED') onState('reconnecting', 'Realtime connection lost; reconnecting')
    })
  signal?.addEventListener('abort', () => { void client.removeChannel(channel) }, { once: true })
}
