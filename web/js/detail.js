// One workflow: its state, actions, charts over time and execution history from the ledger (paged).
import { badge, clear, h, ms, pct, timeEl } from './dom.js'
import { allPages } from './api.js'
import { successRate, workflowActions } from './workflows.js'
import { bucketsFromExecutions, bucketsFromStats, renderCharts } from './charts.js'

const PAGE = 20

export async function loadBuckets (ctx, { workflowId, bucket }) {
  const since = new Date(Date.now() - (bucket === 'day' ? 30 * 86_400_000 : 48 * 3_600_000)).toISOString()
  const statsPath = workflowId ? `/workflows/${workflowId}/stats` : '/stats'
  if (workflowId ? ctx.features.workflowStats : ctx.features.stats) {
    return bucketsFromStats(await ctx.api.get(statsPath, { bucket, since }))
  }
  // Without the stats routes: aggregate the newest ledger rows in the browser.
  if (!workflowId) return []
  const rows = await allPages(ctx.api, `/workflows/${workflowId}/executions`, { limit: 100 }, 10)
  return bucketsFromExecutions(rows.filter((e) => (e.started_at ?? e.created_at) >= since), bucket)
}

export function renderDetail (ctx, view, id, signal) {
  document.title = 'Workflow · workflow-sync'
  const head = h('div')
  const facts = h('div', { class: 'card' })
  const chartsBox = h('div', { class: 'grid', id: 'charts' })
  const execBox = h('div')
  let bucket = 'hour'
  const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Chart period' })
  for (const [b, label] of [['hour', 'Per hour (48 h)'], ['day', 'Per day (30 d)']]) {
    const btn = h('button', { type: 'button', 'aria-pressed': String(b === bucket), dataset: { bucket: b } }, label)
    btn.addEventListener('click', () => {
      bucket = b
      for (const x of seg.children) x.setAttribute('aria-pressed', String(x.dataset.bucket === b))
      void drawCharts()
    })
    seg.append(btn)
  }
  clear(view,
    h('p', {}, h('a', { href: '#/' }, '← All workflows')),
    head, facts,
    h('div', { class: 'toolbar' }, h('h2', {}, 'Over time'), seg),
    chartsBox,
    h('h2', {}, 'Execution history'),
    execBox)

  const paintHead = (w) => {
    document.title = `${w.name} · workflow-sync`
    clear(head, h('div', { class: 'toolbar' }, h('h1', {}, w.name, ' ', badge(w.status)), workflowActions(ctx, w, { onDeleted: () => { location.hash = '#/' } })))
    clear(facts, h('dl', { class: 'kv' },
      h('dt', {}, 'Active'), h('dd', {}, w.active ? 'Yes' : 'No'),
      h('dt', {}, 'Executions'), h('dd', { id: 'detail-executions' }, `${w.execution_count} (${w.successful_executions} successful, ${w.failed_executions} failed, success rate ${pct(successRate(w))})`),
      h('dt', {}, 'Last run'), h('dd', {}, w.last_execution_at ? [timeEl(w.last_execution_at), ' ', badge(w.last_execution_status)] : '—'),
      h('dt', {}, 'Last sync'), h('dd', {}, timeEl(w.last_sync_at)),
      h('dt', {}, 'n8n workflow'), h('dd', {}, w.n8n_workflow_id ?? '—'),
      w.last_error ? [h('dt', {}, 'Last error'), h('dd', { class: 'err' }, w.last_error)] : null,
      h('dt', {}, 'Version'), h('dd', {}, String(w.version)),
      h('dt', {}, 'Created'), h('dd', {}, timeEl(w.created_at)),
      Array.isArray(w.nodes) ? [h('dt', {}, 'Nodes'), h('dd', {}, w.nodes.map((n) => n.name).join(', ') || '—')] : null))
  }

  async function drawCharts () {
    try {
      const buckets = await loadBuckets(ctx, { workflowId: id, bucket })
      if (!signal.aborted) renderCharts(chartsBox, buckets, bucket)
    } catch (err) {
      if (!signal.aborted) clear(chartsBox, h('p', { class: 'err' }, `Charts unavailable: ${err.title}${err.detail ? ` — ${err.detail}` : ''}`))
    }
  }

  // Paging: a stack of cursors so "Newer" goes back exactly.
  const cursors = [undefined]
  async function drawExecutions () {
    try {
      const page = await ctx.api.get(`/workflows/${id}/executions`, { limit: PAGE, cursor: cursors.at(-1) })
      if (signal.aborted) return
      const older = h('button', { type: 'button', disabled: !page.next_cursor, 'aria-label': 'Older executions' }, 'Older →')
      const newer = h('button', { type: 'button', disabled: cursors.length === 1, 'aria-label': 'Newer executions' }, '← Newer')
      older.addEventListener('click', () => { cursors.push(page.next_cursor); void drawExecutions() })
      newer.addEventListener('click', () => { cursors.pop(); void drawExecutions() })
      clear(execBox,
        page.data.length === 0
          ? h('div', { class: 'empty card', id: 'executions-empty' }, 'No executions recorded yet. Run the workflow in n8n, then press Sync.')
          : h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'executions-table' },
            h('thead', {}, h('tr', {}, ['n8n id', 'Status', 'Mode', 'Started', 'Duration'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, page.data.map((e) => h('tr', {},
              h('td', { 'data-label': 'n8n id' }, e.n8n_execution_id),
              h('td', { 'data-label': 'Status' }, badge(e.status)),
              h('td', { 'data-label': 'Mode' }, e.mode ?? '—'),
              h('td', { 'data-label': 'Started' }, timeEl(e.started_at ?? e.created_at)),
              h('td', { 'data-label': 'Duration', class: 'num' }, e.started_at && e.stopped_at ? ms(Date.parse(e.stopped_at) - Date.parse(e.started_at)) : '—')))))),
        h('div', { class: 'pager' }, newer, older))
    } catch (err) {
      if (!signal.aborted) clear(execBox, h('p', { class: 'err' }, `${err.title}${err.detail ? ` — ${err.detail}` : ''}`))
    }
  }

  let lastKey = ''
  const onChange = () => {
    const w = ctx.store.get(id)
    if (!w) return
    const key = `${w.version}|${w.execution_count}|${w.status}|${w.active}|${w.last_sync_at}`
    if (key === lastKey) return
    const countsMoved = lastKey && key.split('|')[1] !== lastKey.split('|')[1]
    lastKey = key
    paintHead({ ...w, nodes: w.nodes ?? full?.nodes })
    if (countsMoved) { void drawCharts(); if (cursors.length === 1) void drawExecutions() }
  }
  let full
  ctx.store.addEventListener('change', onChange, { signal })
  ;(async () => {
    try {
      full = await ctx.api.get(`/workflows/${id}`, { include: 'definition' })
      if (signal.aborted) return
      ctx.store.upsert(full)
      onChange()
    } catch (err) {
      if (signal.aborted) return
      clear(view, h('p', {}, h('a', { href: '#/' }, '← All workflows')), h('p', { class: 'err' }, `${err.title}${err.detail ? ` — ${err.detail}` : ''}`))
      return
    }
    await Promise.all([drawCharts(), drawExecutions()])
    view.dataset.loaded = 'true'
  })()
}
