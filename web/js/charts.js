// Charts over time with uPlot (ESM build served from node_modules). Series come either from the
// service's stats endpoint or, where it does not exist, from the ledger rows themselves.
import UPlot from '/vendor/uplot/uPlot.esm.js'

// uPlot's stylesheet, once, when the first chart module loads (not on the table's path).
if (!document.querySelector('link[href="/vendor/uplot/uPlot.min.css"]')) {
  const link = document.createElement('link')
  link.rel = 'stylesheet'
  link.href = '/vendor/uplot/uPlot.min.css'
  document.head.append(link)
}

const OK = new Set(['success'])
const FAILED = new Set(['error', 'crashed'])

function quantile (sorted, q) {
  if (sorted.length === 0) return null
  const i = (sorted.length - 1) * q
  const lo = Math.floor(i)
  const hi = Math.ceil(i)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo)
}

/** Buckets of executions (ledger rows) by hour or day: counts by status, success rate, p50/p95. */
export function bucketsFromExecutions (rows, bucket) {
  const size = bucket === 'day' ? 86_400_000 : 3_600_000
  const map = new Map()
  for (const e of rows) {
    const t = Date.parse(e.started_at ?? e.created_at)
    if (Number.isNaN(t)) continue
    const k = Math.floor(t / size) * size
    let b = map.get(k)
    if (!b) map.set(k, b = { t: k, success: 0, failed: 0, other: 0, durations: [] })
    if (OK.has(e.status)) b.success++
    else if (FAILED.has(e.status)) b.failed++
    else b.other++
    if (e.started_at && e.stopped_at) b.durations.push(Date.parse(e.stopped_at) - Date.parse(e.started_at))
  }
  return [...map.values()].sort((a, b) => a.t - b.t).map((b) => {
    const d = b.durations.sort((x, y) => x - y)
    const done = b.success + b.failed
    return { t: b.t, success: b.success, failed: b.failed, other: b.other, rate: done ? b.success / done : null, p50: quantile(d, 0.5), p95: quantile(d, 0.95), avg: d.length ? d.reduce((s, x) => s + x, 0) / d.length : null }
  })
}

/** The same shape from GET /workflows/{id}/stats or GET /stats (ExecutionStats: every bucket of the window, oldest first). */
export function bucketsFromStats (answer) {
  return (answer?.buckets ?? []).map((b) => {
    const success = b.counts.success
    const failed = b.counts.error + b.counts.crashed
    return {
      t: Date.parse(b.start),
      success,
      failed,
      other: Math.max(0, b.total - success - failed),
      rate: b.success_rate,
      p50: b.p50_duration_ms,
      p95: b.p95_duration_ms,
      avg: b.avg_duration_ms
    }
  })
}

const css = getComputedStyle(document.documentElement)
const color = (name) => css.getPropertyValue(name).trim()

function plot (el, title, series, data, yFmt, yRange) {
  el.replaceChildren()
  const width = Math.max(260, Math.floor(el.getBoundingClientRect().width || 320))
  const opts = {
    width,
    height: 200,
    title: undefined,
    legend: { show: true },
    scales: { x: { time: true }, ...(yRange ? { y: { range: yRange } } : {}) },
    axes: [{}, { values: (_u, ticks) => ticks.map(yFmt), size: 60 }],
    series: [{}, ...series]
  }
  const u = new UPlot(opts, data, el)
  const ro = new ResizeObserver(() => { const w = Math.floor(el.getBoundingClientRect().width); if (w > 0 && Math.abs(w - u.width) > 4) u.setSize({ width: w, height: 200 }) })
  ro.observe(el)
  return u
}

/** Renders the three charts into a container; returns how many buckets were drawn. */
export function renderCharts (container, buckets, bucket) {
  const xs = buckets.map((b) => b.t / 1000)
  const unit = bucket === 'day' ? 'day' : 'hour'
  const bars = UPlot.paths.bars({ size: [0.6, 40] })
  const charts = [
    {
      id: 'chart-executions',
      title: `Executions per ${unit}, by status`,
      series: [
        { label: 'success', stroke: color('--ok'), fill: 'rgba(30,142,62,.35)', paths: bars, points: { show: false } },
        { label: 'failed', stroke: color('--bad'), fill: 'rgba(198,40,40,.45)', paths: bars, points: { show: false } },
        { label: 'other', stroke: color('--grey'), fill: 'rgba(138,147,158,.4)', paths: bars, points: { show: false } }
      ],
      data: [xs, buckets.map((b) => b.success), buckets.map((b) => b.failed), buckets.map((b) => b.other)],
      fmt: (v) => String(v),
      summary: () => {
        const s = buckets.reduce((a, b) => ({ success: a.success + b.success, failed: a.failed + b.failed, other: a.other + b.other }), { success: 0, failed: 0, other: 0 })
        return `${s.success} successful, ${s.failed} failed, ${s.other} other executions over ${buckets.length} ${unit}(s)`
      }
    },
    {
      id: 'chart-rate',
      title: 'Success rate',
      series: [{ label: 'success rate %', stroke: color('--accent'), width: 2, points: { show: true } }],
      data: [xs, buckets.map((b) => b.rate === null ? null : Math.round(b.rate * 1000) / 10)],
      fmt: (v) => `${v} %`,
      range: [0, 100],
      summary: () => `success rate per ${unit}, latest ${buckets.at(-1)?.rate === null || !buckets.length ? 'n/a' : `${Math.round(buckets.at(-1).rate * 100)} %`}`
    },
    {
      id: 'chart-duration',
      title: 'Duration p50 / p95',
      series: [
        { label: 'p50 ms', stroke: color('--accent'), width: 2, points: { show: true } },
        { label: 'p95 ms', stroke: color('--warn'), width: 2, points: { show: true } }
      ],
      data: [xs, buckets.map((b) => b.p50 ?? b.avg), buckets.map((b) => b.p95)],
      fmt: (v) => v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`,
      summary: () => `duration per ${unit}: median and 95th percentile in milliseconds`
    }
  ]
  container.replaceChildren()
  for (const c of charts) {
    const plotEl = document.createElement('div')
    plotEl.className = 'plot'
    const fig = document.createElement('figure')
    fig.className = 'chart card'
    fig.id = c.id
    fig.dataset.points = String(buckets.length)
    const h3 = document.createElement('h3')
    h3.textContent = c.title
    plotEl.setAttribute('role', 'img')
    plotEl.setAttribute('aria-label', `${c.title}: ${c.summary()}`)
    fig.append(h3, plotEl)
    container.append(fig)
    if (buckets.length === 0) {
      plotEl.textContent = 'No executions in this period yet.'
      continue
    }
    plot(plotEl, c.title, c.series, c.data, c.fmt, c.range)
  }
  return buckets.length
}
