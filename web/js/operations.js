// Operations: sync logs and the success rate / average duration per sync type over 24 h (the
// guide's monitoring SQL as a page). With a cron/service credential pasted it shows every user's
// syncs; without one, the signed-in user's own.
import { badge, clear, h, ms, pct, timeEl } from './dom.js'

const CRED_KEY = 'workflow-sync.service-credential'

export function renderOperations (ctx, view, signal) {
  document.title = 'Operations · workflow-sync'
  const credError = h('p', { class: 'form-error', role: 'alert', id: 'cred-error' })
  const scopeNote = h('p', { class: 'muted', id: 'ops-scope' })
  const form = h('form', { class: 'card', id: 'cred-form' },
    h('label', { for: 'service-credential' }, 'Service credential (CRON_SECRET or a service_role JWT)'),
    h('input', { id: 'service-credential', name: 'credential', type: 'password', autocomplete: 'off', value: sessionStorage.getItem(CRED_KEY) ?? '' }),
    h('p', { class: 'muted' }, 'Optional: with it the page shows every user\'s syncs; without it, your own. Kept in this tab only.'),
    credError,
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'cred-clear' }, 'Forget credential'),
      h('button', { type: 'submit', class: 'primary', id: 'cred-apply' }, 'Show')))
  const statsBox = h('div', { id: 'sync-stats' })
  const logsBox = h('div', { id: 'sync-logs' })
  clear(view, h('h1', {}, 'Operations'), form, scopeNote, h('h2', {}, 'Syncs in the last 24 hours'), statsBox, h('h2', {}, 'Sync log'), logsBox)

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const v = form.elements.credential.value.trim()
    if (v) sessionStorage.setItem(CRED_KEY, v)
    else sessionStorage.removeItem(CRED_KEY)
    void load()
  })
  form.querySelector('#cred-clear').addEventListener('click', () => {
    sessionStorage.removeItem(CRED_KEY)
    form.elements.credential.value = ''
    void load()
  })

  const cursors = [undefined]
  async function load () {
    credError.textContent = ''
    const cred = sessionStorage.getItem(CRED_KEY) || undefined
    scopeNote.textContent = cred ? 'Showing every user\'s syncs (service credential).' : 'Showing your own syncs.'
    try {
      const [stats, logs] = await Promise.all([
        ctx.api.get('/sync/stats', { hours: 24 }, { token: cred }),
        ctx.api.get('/sync/logs', { limit: 20, cursor: cursors.at(-1) }, { token: cred })
      ])
      if (signal.aborted) return
      paintStats(stats)
      paintLogs(logs)
      view.dataset.loaded = 'true'
    } catch (err) {
      if (signal.aborted) return
      const msg = `${err.title}${err.detail ? `: ${err.detail}` : ''}`
      if (cred && (err.status === 401 || err.status === 403)) credError.textContent = `This credential was refused (${msg}).`
      else ctx.showError(err)
    }
  }

  function paintStats (s) {
    clear(statsBox,
      h('div', { class: 'card' }, h('dl', { class: 'kv' },
        h('dt', {}, 'Syncs'), h('dd', { id: 'ops-total' }, String(s.total)),
        h('dt', {}, 'Success rate'), h('dd', { id: 'ops-rate' }, pct(s.success_rate)),
        h('dt', {}, 'Since'), h('dd', {}, timeEl(s.since)))),
      s.by_type.length === 0
        ? h('div', { class: 'empty card' }, 'No syncs in this window.')
        : h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'stats-table' },
          h('thead', {}, h('tr', {}, ['Sync type', 'Syncs', 'Success rate', 'Average duration', 'By status'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, s.by_type.map((t) => h('tr', {},
            h('td', { 'data-label': 'Sync type' }, t.sync_type),
            h('td', { 'data-label': 'Syncs', class: 'num' }, String(t.count)),
            h('td', { 'data-label': 'Success rate', class: 'num' }, pct(t.success_rate)),
            h('td', { 'data-label': 'Average duration', class: 'num' }, ms(t.avg_duration_ms)),
            h('td', { 'data-label': 'By status' }, s.groups.filter((g) => g.sync_type === t.sync_type).map((g) => [badge(g.status), ` ${g.count} (avg ${ms(g.avg_duration_ms)}) `])))))))
    )
  }

  function paintLogs (page) {
    const older = h('button', { type: 'button', disabled: !page.next_cursor, 'aria-label': 'Older sync logs' }, 'Older →')
    const newer = h('button', { type: 'button', disabled: cursors.length === 1, 'aria-label': 'Newer sync logs' }, '← Newer')
    older.addEventListener('click', () => { cursors.push(page.next_cursor); void load() })
    newer.addEventListener('click', () => { cursors.pop(); void load() })
    clear(logsBox,
      page.data.length === 0
        ? h('div', { class: 'empty card' }, 'No syncs yet.')
        : h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'logs-table' },
          h('thead', {}, h('tr', {}, ['When', 'Type', 'Status', 'Duration', 'Synced', 'Failed', 'Executions', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.data.map((l) => h('tr', {},
            h('td', { 'data-label': 'When' }, timeEl(l.created_at)),
            h('td', { 'data-label': 'Type' }, l.sync_type),
            h('td', { 'data-label': 'Status' }, badge(l.status)),
            h('td', { 'data-label': 'Duration', class: 'num' }, ms(l.duration_ms)),
            h('td', { 'data-label': 'Synced', class: 'num' }, String(l.workflows_synced)),
            h('td', { 'data-label': 'Failed', class: 'num' }, String(l.workflows_failed)),
            h('td', { 'data-label': 'Executions', class: 'num' }, String(l.executions_ingested)),
            h('td', { 'data-label': 'Error' }, l.error ?? '')))))),
      h('div', { class: 'pager' }, newer, older))
  }
  void load()
}
