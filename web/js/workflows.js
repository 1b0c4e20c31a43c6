// The workflows table (live), its actions and the "New workflow" dialog.
import { $, badge, clear, h, pct, timeEl } from './dom.js'
import { allPages } from './api.js'

/** The caller's workflows by id; tells listeners what changed. */
export class WorkflowStore extends EventTarget {
  #rows = new Map()
  loaded = false
  #reloading = null
  get list () {
    return [...this.#rows.values()].sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? '') || b.id.localeCompare(a.id))
  }

  get (id) { return this.#rows.get(id) }
  upsert (w) {
    const old = this.#rows.get(w.id)
    // An event may be older than an answer already applied: keep the newest version.
    if (old && typeof old.version === 'number' && typeof w.version === 'number' && w.version < old.version) return
    if (old && w.version === old.version && (old.updated_at ?? '') > (w.updated_at ?? '')) return
    this.#rows.set(w.id, { ...old, ...w })
    this.#changed()
  }

  remove (id) { if (this.#rows.delete(id)) this.#changed() }
  clear () { this.#rows.clear(); this.loaded = false; this.#changed() }
  /** The whole list again (first load, `ready`/`reset` events, after actions, polling). */
  fetchAll (api, token) {
    return allPages({ get: (path, query) => api.get(path, query, token ? { token } : undefined) }, '/workflows', { limit: 100 })
  }

  replace (rows) {
    this.#rows = new Map(rows.map((w) => [w.id, w]))
    this.loaded = true
    this.#changed()
  }

  reload (api) {
    this.#reloading ??= (async () => {
      try {
        this.replace(await this.fetchAll(api))
      } finally {
        this.#reloading = null
      }
    })()
    return this.#reloading
  }

  #changed () { this.dispatchEvent(new Event('change')) }
}

export function successRate (w) {
  const done = (w.successful_executions ?? 0) + (w.failed_executions ?? 0)
  return done === 0 ? null : w.successful_executions / done
}

// ---------------------------------------------------------------------------------------------
// Actions (also used by the detail page)

export async function runAction (ctx, button, fn, done) {
  ctx.clearError()
  const label = button?.textContent
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true') }
  try {
    const r = await fn()
    if (done) done(r)
    return r
  } catch (err) {
    ctx.showError(err)
  } finally {
    if (button) { button.disabled = false; button.removeAttribute('aria-busy'); button.textContent = label }
  }
}

export async function syncNow (ctx, button, workflowIds) {
  return runAction(ctx, button, () => ctx.api.post('/sync', workflowIds ? { workflow_ids: workflowIds } : {}), (r) => {
    ctx.store.reload(ctx.api).catch(() => {})
    const summary = `${r.workflows_synced} workflow(s) synced, ${r.executions_ingested} new execution(s), ${r.duration_ms} ms`
    if (r.status === 'success') return ctx.notify(`Sync done: ${summary}.`)
    const n8nDown = r.errors.find((e) => e.code === 'n8n_unavailable')
    ctx.showError({
      title: n8nDown ? 'n8n is unavailable' : r.status === 'partial' ? 'Sync partly failed' : 'Sync failed',
      detail: `${n8nDown ? n8nDown.message : r.errors.map((e) => e.message).slice(0, 3).join('; ')} — ${r.workflows_failed} workflow(s) not synced; nothing was lost: the workflows and their counts are kept, sync again when n8n answers.`
    })
  })
}

export function workflowActions (ctx, w, { onDeleted } = {}) {
  const act = (label, aria, fn, cls) => {
    const b = h('button', { type: 'button', class: cls, 'aria-label': `${aria} ${w.name}`, dataset: { action: label.toLowerCase() } }, label)
    b.addEventListener('click', () => fn(b))
    return b
  }
  const id = w.id
  const after = (msg) => (r) => { if (r && r.id) ctx.store.upsert(r); ctx.store.reload(ctx.api).catch(() => {}); ctx.notify(msg) }
  const buttons = []
  if (ctx.features.run) {
    buttons.push(act('Run', 'Run', (b) => runAction(ctx, b, () => ctx.api.post(`/workflows/${id}/run`, {}), after(`Run of “${w.name}” started.`))))
  }
  buttons.push(w.active
    ? act('Deactivate', 'Deactivate', (b) => runAction(ctx, b, () => ctx.api.post(`/workflows/${id}/deactivate`), after(`“${w.name}” deactivated.`)))
    : act('Activate', 'Activate', (b) => runAction(ctx, b, () => ctx.api.post(`/workflows/${id}/activate`), after(`“${w.name}” activated.`))))
  buttons.push(act('Sync', 'Sync', (b) => syncNow(ctx, b, [id])))
  if (w.status !== 'deployed') {
    buttons.push(act('Redeploy', 'Redeploy', (b) => runAction(ctx, b, () => ctx.api.post(`/workflows/${id}/redeploy`), after(`“${w.name}” redeployed.`))))
  }
  buttons.push(act('Delete', 'Delete', async (b) => {
    if (!await confirmDialog(`Delete “${w.name}”? It is removed from n8n and from the database, with its execution history.`)) return
    await runAction(ctx, b, () => ctx.api.del(`/workflows/${id}`), () => {
      ctx.store.remove(id)
      ctx.notify(`“${w.name}” deleted.`)
      onDeleted?.()
    })
  }, 'danger'))
  return h('div', { class: 'actions' }, buttons)
}

function confirmDialog (text) {
  const d = $('confirm-dialog')
  $('confirm-text').textContent = text
  d.returnValue = ''
  d.showModal()
  $('confirm-cancel').focus()
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }))
}

// ---------------------------------------------------------------------------------------------
// The table

const COLUMNS = [
  ['Name', 'name', 'name'], ['Status', '', 'status'], ['Active', '', 'active'], ['Executions', 'num', 'executions'],
  ['Successes', 'num', 'successes'], ['Failures', 'num', 'failures'], ['Success rate', 'num', 'rate'],
  ['Last run', '', 'last-run'], ['Last sync', '', 'last-sync'], ['Actions', '', 'actions']
]

function row (ctx, w) {
  const cells = [
    h('a', { href: `#/workflows/${w.id}` }, w.name),
    [badge(w.status), w.last_error ? h('div', { class: 'err' }, w.last_error) : null],
    w.active ? 'Yes' : 'No',
    w.execution_count, w.successful_executions, w.failed_executions,
    pct(successRate(w)),
    w.last_execution_at ? [timeEl(w.last_execution_at), ' ', badge(w.last_execution_status)] : '—',
    timeEl(w.last_sync_at),
    workflowActions(ctx, w)
  ]
  return h('tr', { dataset: { id: w.id, version: String(w.version) } },
    cells.map((c, i) => h('td', { class: COLUMNS[i][1] || undefined, 'data-label': COLUMNS[i][0], dataset: { col: COLUMNS[i][2] } }, c)))
}

function rowKey (w) {
  return JSON.stringify([w.name, w.status, w.last_error, w.active, w.execution_count, w.successful_executions, w.failed_executions,
    w.last_execution_at, w.last_execution_status, w.last_sync_at, w.version, Math.floor(Date.now() / 60000)])
}

export function renderWorkflows (ctx, view, signal) {
  document.title = 'Workflows · workflow-sync'
  const tbody = h('tbody')
  const count = h('span', { class: 'muted', id: 'wf-count' })
  const table = h('table', { class: 'cards', id: 'workflows-table' },
    h('caption', { class: 'muted', hidden: true }, 'Your workflows'),
    h('thead', {}, h('tr', {}, COLUMNS.map(([label, cls]) => h('th', { scope: 'col', class: cls || undefined }, label)))),
    tbody)
  const empty = h('div', { class: 'empty card', id: 'workflows-empty', hidden: true }, 'No workflows yet. Press “New workflow” to create one.')
  const syncBtn = h('button', { type: 'button', id: 'sync-all' }, 'Sync')
  syncBtn.setAttribute('aria-label', 'Sync all workflows with n8n')
  syncBtn.addEventListener('click', () => syncNow(ctx, syncBtn))
  const newBtn = h('button', { type: 'button', class: 'primary', id: 'new-workflow' }, 'New workflow')
  newBtn.addEventListener('click', () => openNewDialog(ctx))
  clear(view,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Workflows ', count), syncBtn, newBtn),
    h('div', { class: 'table-wrap' }, table), empty)

  const keys = new Map()
  const paint = () => {
    const list = ctx.store.list
    count.textContent = ctx.store.loaded ? `(${list.length})` : ''
    empty.hidden = !ctx.store.loaded || list.length > 0
    table.hidden = list.length === 0
    // Keyed update: only rows whose content changed are rebuilt, so focus and clicks survive.
    const existing = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]))
    let prev = null
    for (const w of list) {
      let tr = existing.get(w.id)
      const key = rowKey(w)
      if (!tr || keys.get(w.id) !== key) {
        const fresh = row(ctx, w)
        if (tr) tr.replaceWith(fresh)
        tr = fresh
        keys.set(w.id, key)
      }
      existing.delete(w.id)
      const want = prev ? prev.nextSibling : tbody.firstChild
      if (want !== tr) tbody.insertBefore(tr, want)
      prev = tr
    }
    for (const [id, tr] of existing) { tr.remove(); keys.delete(id) }
    view.dataset.loaded = String(ctx.store.loaded)
    // For bench/dashboard.ts (navigation timing): the first time the loaded list is on screen.
    if (ctx.store.loaded && performance.getEntriesByName('dashboard:workflows-shown').length === 0) {
      performance.mark('dashboard:workflows-shown', { detail: { rows: list.length } })
    }
  }
  ctx.store.addEventListener('change', paint, { signal })
  const tick = setInterval(paint, 60_000) // relative times
  signal.addEventListener('abort', () => clearInterval(tick), { once: true })
  paint()
}

// ---------------------------------------------------------------------------------------------
// New workflow

function uuid () { return crypto.randomUUID() }

export function template (kind) {
  if (kind === 'webhook') {
    const path = `ws-${uuid().slice(0, 8)}`
    return {
      nodes: [
        { id: uuid(), name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], webhookId: uuid(), parameters: { httpMethod: 'POST', path, responseMode: 'onReceived' } },
        { id: uuid(), name: 'Set', type: 'n8n-nodes-base.set', typeVersion: 3.4, position: [250, 0], parameters: { assignments: { assignments: [{ id: uuid(), name: 'received', value: '={{ $now.toISO() }}', type: 'string' }] }, options: {} } }
      ],
      connections: { Webhook: { main: [[{ node: 'Set', type: 'main', index: 0 }]] } },
      settings: { executionOrder: 'v1' }
    }
  }
  if (kind === 'manual') {
    return {
      nodes: [{ id: uuid(), name: 'When clicking ‘Test workflow’', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} }],
      connections: {},
      settings: { executionOrder: 'v1' }
    }
  }
  return { nodes: [], connections: {}, settings: { executionOrder: 'v1' } }
}

let dialogWired = false
function openNewDialog (ctx) {
  const d = $('new-dialog')
  const form = $('new-form')
  const fill = () => {
    $('new-definition').value = JSON.stringify(template($('new-template').value), null, 2)
    $('new-active').checked = $('new-template').value === 'webhook'
  }
  if (!dialogWired) {
    dialogWired = true
    $('new-template').addEventListener('change', fill)
    $('new-cancel').addEventListener('click', () => d.close())
    form.addEventListener('submit', async (e) => {
      e.preventDefault()
      const err = $('new-error')
      err.textContent = ''
      let def
      try {
        def = JSON.parse($('new-definition').value || '{}')
        if (typeof def !== 'object' || def === null || Array.isArray(def)) throw new Error('the definition must be a JSON object')
      } catch (e2) {
        err.textContent = `The definition is not valid JSON: ${e2.message}`
        return
      }
      const body = { name: $('new-name').value.trim(), nodes: def.nodes ?? [], connections: def.connections ?? {}, settings: def.settings ?? {}, active: $('new-active').checked }
      if (def.description) body.description = def.description
      const submit = $('new-submit')
      submit.disabled = true
      try {
        // One key per opening of the dialog: a double submit or a retry creates one workflow.
        const w = await ctx.api.post('/workflows', body, { headers: { 'idempotency-key': form.dataset.key } })
        ctx.store.upsert(w)
        d.close()
        ctx.notify(w.status === 'deployed' ? `“${w.name}” created and deployed to n8n.` : `“${w.name}” created; status ${w.status}${w.last_error ? `: ${w.last_error}` : ''}.`)
      } catch (e2) {
        const fields = e2.errors?.length ? ` (${e2.errors.map((x) => `${x.path}: ${x.message}`).join('; ')})` : ''
        err.textContent = `${e2.title}${e2.detail ? `: ${e2.detail}` : ''}${fields}`
      } finally {
        submit.disabled = false
      }
    })
  }
  form.dataset.key = uuid()
  $('new-error').textContent = ''
  $('new-name').value = ''
  $('new-template').value = 'webhook'
  fill()
  d.showModal()
  $('new-name').focus()
}
