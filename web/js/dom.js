// Tiny DOM helpers: elements are built with properties and text nodes, never from HTML strings,
// so nothing a workflow name or an error message contains can become markup.
export function h (tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k in el && typeof v !== 'string') el[k] = v
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  append(el, children)
  return el
}

function append (el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

export function clear (el, ...children) {
  el.replaceChildren()
  append(el, children)
  return el
}

export const $ = (id) => document.getElementById(id)

/** "3 min ago", "in 2 h"; the full date goes in a title. */
export function relTime (iso) {
  if (!iso) return '—'
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000)
  const a = Math.abs(s)
  const v = a < 45 ? 'just now' : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`
  return v === 'just now' ? v : s >= 0 ? `${v} ago` : `in ${v}`
}

export function timeEl (iso) {
  return h('time', iso ? { datetime: iso, title: new Date(iso).toLocaleString() } : {}, relTime(iso))
}

export function badge (status) {
  return h('span', { class: `status ${status ?? ''}` }, status ?? '—')
}

export function pct (x) {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : `${Math.round(x * 1000) / 10} %`
}

export function ms (x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—'
  return x < 1000 ? `${Math.round(x)} ms` : `${(x / 1000).toFixed(x < 10_000 ? 2 : 1)} s`
}
