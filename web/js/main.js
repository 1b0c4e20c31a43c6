// The dashboard's entry: configuration, sign-in, the hash router and the shared chrome
// (error banner, notices, live dot). Views live in their own modules.
import { $, clear, h } from './dom.js'
import { createApi } from './api.js'
import { watchEvents, watchRealtime } from './live.js'
import { WorkflowStore, renderWorkflows } from './workflows.js'

const TOKEN_KEY = 'workflow-sync.token'
const SIGNED_OUT_KEY = 'workflow-sync.signed-out'

const ctx = {
  config: null,
  api: null,
  supabase: null,
  token: null,
  me: null,
  features: {},
  store: new WorkflowStore(),
  liveState: 'connecting',
  liveAbort: null,
  showError,
  notify,
  clearError
}
window.__dashboard = ctx // for the browser tests and the console

function showError (err, fallbackTitle = 'Something went wrong') {
  $('banner-title').textContent = err?.title ?? fallbackTitle
  $('banner-detail').textContent = err?.detail ?? (err?.title ? '' : String(err?.message ?? err ?? ''))
  $('banner').hidden = false
}
function clearError () { $('banner').hidden = true }
let noticeTimer
function notify (text) {
  $('notice').textContent = text
  clearTimeout(noticeTimer)
  noticeTimer = setTimeout(() => { $('notice').textContent = '' }, 8000)
}
$('banner-close').addEventListener('click', clearError)

function setLive (state, reason) {
  ctx.liveState = state
  const text = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', error: 'Live updates unavailable' }[state]
  $('live').hidden = false
  $('live-dot').className = `dot ${state === 'live' ? 'live' : state === 'error' ? 'error' : ''}`
  $('live-text').textContent = text
  $('live').title = reason ?? ''
  $('live').dataset.state = state
}

async function getToken () {
  if (ctx.supabase && !sessionStorage.getItem(TOKEN_KEY)) {
    const { data } = await ctx.supabase.auth.getSession()
    return data.session?.access_token ?? ctx.token
  }
  return ctx.token
}

function loadScript (src) {
  return new Promise((resolve, reject) => {
    const s = h('script', { src })
    s.addEventListener('load', resolve)
    s.addEventListener('error', () => reject(new Error(`could not load ${src}`)))
    document.head.append(s)
  })
}

async function boot () {
  ctx.api = createApi({ getToken, onUnauthorized: (err) => { if (ctx.me) signOut(`Your session ended: ${err.title}${err.detail ? ` — ${err.detail}` : ''}`) } })
  try {
    // The server puts the config into the page (no round trip before /me and the list); the
    // request is the fallback for a page served without it.
    const inline = document.getElementById('dashboard-config')
    ctx.config = inline ? JSON.parse(inline.textContent) : await ctx.api.get('/dashboard/config.json', {}, { token: '' })
  } catch (err) {
    clear($('view'), h('p', {}, 'The dashboard cannot reach the service.'))
    return showError(err)
  }
  // Optional routes (run, stats) as this server has them: the page hides what is missing.
  const f = ctx.config.features
  ctx.features = f ? { run: f.run, workflowStats: f.stats, stats: f.stats } : await ctx.api.features()
  if (ctx.config.supabase) {
    await loadScript('/vendor/supabase/supabase.js')
    ctx.supabase = window.supabase.createClient(ctx.config.supabase.url, ctx.config.supabase.anon_key)
    ctx.supabase.auth.onAuthStateChange((event) => { if (event === 'SIGNED_OUT' && ctx.me && !sessionStorage.getItem(TOKEN_KEY)) signOut() })
  }
  const stored = sessionStorage.getItem(TOKEN_KEY)
  if (stored && await trySignIn(stored, 'pasted')) return
  if (ctx.supabase) {
    const { data } = await ctx.supabase.auth.getSession()
    if (data.session && await trySignIn(data.session.access_token, 'supabase')) return
  }
  if (ctx.config.demo && !sessionStorage.getItem(SIGNED_OUT_KEY) && await trySignIn(ctx.config.demo.access_token, 'demo')) return
  renderSignIn()
}

/** Checks the token with GET /me; on success starts the session. Returns false (and says why) otherwise. */
async function trySignIn (token, source, errorEl) {
  // The list is asked for together with /me (one round trip less before the table shows); its
  // answer is dropped if the token turns out to be refused.
  const list = ctx.store.fetchAll(ctx.api, token).catch(() => null)
  try {
    const me = await ctx.api.get('/me', {}, { token })
    ctx.token = token
    const rows = await list
    if (rows) ctx.store.replace(rows)
    ctx.me = { ...me, source }
    if (source === 'pasted') sessionStorage.setItem(TOKEN_KEY, token)
    sessionStorage.removeItem(SIGNED_OUT_KEY)
    startSession()
    return true
  } catch (err) {
    if (source === 'pasted') sessionStorage.removeItem(TOKEN_KEY)
    if (errorEl) {
      errorEl.textContent = err.status === 401
        ? `This token was refused (${err.title}${err.detail ? `: ${err.detail}` : ''}). Paste a current access token for this service.`
        : err.status === 403
          ? `This token is not a user's access token (${err.title}${err.detail ? `: ${err.detail}` : ''}).`
          : `${err.title}${err.detail ? `: ${err.detail}` : ''}`
    }
    return false
  }
}

function startSession () {
  $('who').hidden = false
  $('who-name').textContent = ctx.me.email ?? ctx.me.user_id
  $('who-name').title = `user ${ctx.me.user_id} (${ctx.me.source === 'demo' ? 'development demo user' : ctx.me.source})`
  ctx.liveAbort = new AbortController()
  const handlers = {
    onUpsert: (w) => ctx.store.upsert(w),
    onDelete: (id) => ctx.store.remove(id),
    onReload: () => ctx.store.reload(ctx.api).catch((err) => showError(err)),
    onState: setLive,
    signal: ctx.liveAbort.signal
  }
  if (ctx.config.live === 'realtime' && ctx.supabase) {
    watchRealtime({ client: ctx.supabase, token: ctx.me.source === 'supabase' ? undefined : ctx.token, ...handlers })
  } else {
    watchEvents({ getToken, ...handlers })
  }
  // Belt and braces: while live updates are down, poll the list (an unchanged list is a 304).
  const poll = setInterval(() => { if (ctx.liveState !== 'live') ctx.store.reload(ctx.api).catch(() => {}) }, 15_000)
  ctx.liveAbort.signal.addEventListener('abort', () => clearInterval(poll), { once: true })
  if (!ctx.store.loaded) ctx.store.reload(ctx.api).catch((err) => showError(err))
  route()
}

async function signOut (message) {
  ctx.liveAbort?.abort()
  sessionStorage.removeItem(TOKEN_KEY)
  if (ctx.me?.source === 'demo') sessionStorage.setItem(SIGNED_OUT_KEY, '1')
  if (ctx.supabase && ctx.me?.source === 'supabase') await ctx.supabase.auth.signOut().catch(() => {})
  ctx.me = null
  ctx.token = null
  ctx.store.clear()
  $('who').hidden = true
  $('live').hidden = true
  renderSignIn(message)
}
$('sign-out').addEventListener('click', () => { void signOut() })

function renderSignIn (message) {
  const view = $('view')
  const tokenError = h('p', { class: 'form-error', id: 'token-error', role: 'alert' }, message ?? '')
  const tokenForm = h('form', { class: 'signin card', id: 'token-form', 'aria-labelledby': 'token-heading' },
    h('h1', { id: 'token-heading' }, ctx.supabase ? 'Or paste an access token' : 'Sign in'),
    h('label', { for: 'token' }, 'Access token'),
    h('textarea', { id: 'token', name: 'token', rows: 4, required: true, spellcheck: 'false', autocomplete: 'off', placeholder: 'eyJhbGciOi…' }),
    h('p', { class: 'muted' }, 'A Supabase access token of your user (or, in development, the demo token the server printed at start).'),
    tokenError,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', id: 'token-submit' }, 'Sign in with token'))
  )
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault()
    tokenError.textContent = ''
    const token = tokenForm.elements.token.value.trim().replace(/^Bearer\s+/i, '')
    if (!token) { tokenError.textContent = 'Paste a token first.'; return }
    if (!await trySignIn(token, 'pasted', tokenError)) tokenForm.elements.token.focus()
  })
  const forms = [tokenForm]
  if (ctx.supabase) {
    const err = h('p', { class: 'form-error', id: 'password-error', role: 'alert' })
    const pw = h('form', { class: 'signin card', id: 'password-form', 'aria-labelledby': 'password-heading' },
      h('h1', { id: 'password-heading' }, 'Sign in'),
      h('label', { for: 'email' }, 'Email'),
      h('input', { id: 'email', name: 'email', type: 'email', required: true, autocomplete: 'username' }),
      h('label', { for: 'password' }, 'Password'),
      h('input', { id: 'password', name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
      err,
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in'))
    )
    pw.addEventListener('submit', async (e) => {
      e.preventDefault()
      err.textContent = ''
      const { data, error } = await ctx.supabase.auth.signInWithPassword({ email: pw.elements.email.value, password: pw.elements.password.value })
      if (error) { err.textContent = `Sign-in failed: ${error.message}`; return }
      await trySignIn(data.session.access_token, 'supabase', err)
    })
    forms.unshift(pw)
  }
  clear(view, ...forms)
  document.title = 'Sign in · workflow-sync'
}

function route () {
  if (!ctx.me) return
  clearError()
  ctx.viewAbort?.abort()
  ctx.viewAbort = new AbortController()
  const hash = location.hash.replace(/^#/, '') || '/'
  const view = $('view')
  const m = /^\/workflows\/([0-9a-f-]{36})$/.exec(hash)
  for (const a of document.querySelectorAll('nav a')) a.removeAttribute('aria-current')
  const signal = ctx.viewAbort.signal
  // The detail page (with the chart library) and the operations page load on first use, keeping
  // them off the path of the first paint of the table.
  const lazy = (load) => load.then((render) => { if (!signal.aborted) render(ctx, view, signal) }, (err) => showError(err, 'This page could not be loaded'))
  if (m) {
    lazy(import('./detail.js').then((mod) => (c, v, s) => mod.renderDetail(c, v, m[1], s)))
  } else if (hash === '/operations') {
    $('nav-operations').setAttribute('aria-current', 'page')
    lazy(import('./operations.js').then((mod) => mod.renderOperations))
  } else {
    $('nav-workflows').setAttribute('aria-current', 'page')
    renderWorkflows(ctx, view, signal)
  }
}
window.addEventListener('hashchange', route)

void boot()
