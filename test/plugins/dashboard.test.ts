// The dashboard plugin: static files at /, vendored browser builds from node_modules, the page's
// configuration (the demo token only in development on the generated secret), and the API's
// own routes and 404s left as they were.
import t from 'tap'
import { jwtVerify } from 'jose'
import { buildTestApp } from '../helpers/app.ts'
import { DEMO_USER_ID } from '../../src/services/demo-user.ts'

t.test('serves the page, its modules and the vendored libraries; API routes and 404s unchanged', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  const page = await h.app.inject({ method: 'GET', url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<script type="module" src="\/js\/main\.js"><\/script>/)
  t.notMatch(page.body, /<script>(?!<)/, 'no inline script')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/)
  t.ok(page.headers.etag, 'revalidated by ETag')

  for (const url of ['/js/main.js', '/js/live.js', '/js/workflows.js', '/js/detail.js', '/js/charts.js', '/js/operations.js', '/js/api.js', '/js/dom.js', '/app.css', '/vendor/uplot/uPlot.esm.js', '/vendor/uplot/uPlot.min.css', '/vendor/supabase/supabase.js']) {
    const r = await h.app.inject({ method: 'GET', url })
    t.equal(r.statusCode, 200, url)
    t.match(r.headers['content-type'], url.endsWith('.css') ? /^text\/css/ : /javascript/, url)
  }
  // only the two builds the page needs leave node_modules
  for (const url of ['/vendor/uplot/uPlot.cjs.js', '/vendor/uplot/../package.json', '/vendor/supabase/../index.cjs', '/vendor/supabase/supabase.js.map']) {
    const r = await h.app.inject({ method: 'GET', url })
    t.equal(r.statusCode, 404, url)
  }
  const missing = await h.app.inject({ method: 'GET', url: '/no-such-page' })
  t.equal(missing.statusCode, 404)
  t.match(missing.headers['content-type'], /application\/problem\+json/)
  t.equal(missing.json().code, 'not_found')
  t.equal((await h.app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  t.equal((await h.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 200)
  const docs = await h.app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.body, /swagger/i)
})

t.test('config.json: no demo token with a configured secret', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  const r = await h.app.inject({ method: 'GET', url: '/dashboard/config.json' })
  t.equal(r.statusCode, 200)
  t.equal(r.headers['cache-control'], 'no-store')
  t.same(r.json(), { data_mode: 'pg', live: 'events', features: { run: h.app.hasRoute({ method: 'POST', url: '/workflows/:id/run' }), stats: true }, supabase: null, demo: null })
})

t.test('config.json: the demo user in development on the generated secret, and its token works', async (t) => {
  const h = await buildTestApp({ env: { SUPABASE_JWT_SECRET: '', NODE_ENV: 'development' } })
  t.teardown(() => h.close())
  t.equal(h.config.devAuth, true)
  const r = await h.app.inject({ method: 'GET', url: '/dashboard/config.json' })
  const demo = r.json().demo
  t.equal(demo.user_id, DEMO_USER_ID)
  const { payload } = await jwtVerify(demo.access_token, new TextEncoder().encode(h.config.SUPABASE_JWT_SECRET!))
  t.equal(payload.sub, DEMO_USER_ID)
  t.equal(payload.exp, demo.expires_at)
  const me = await h.app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${demo.access_token}` } })
  t.equal(me.statusCode, 200)
  t.equal(me.json().user_id, DEMO_USER_ID)
  const again = await h.app.inject({ method: 'GET', url: '/dashboard/config.json' })
  t.equal(again.json().demo.access_token, demo.access_token, 'one token per process while it is fresh')
})

t.test('config.json and CSP with Supabase Auth configured', async (t) => {
  const h = await buildTestApp({ env: { SUPABASE_URL: 'https://abc.supabase.co/', SUPABASE_ANON_KEY: 'sb_publishable_test' } })
  t.teardown(() => h.close())
  const r = await h.app.inject({ method: 'GET', url: '/dashboard/config.json' })
  t.same(r.json().supabase, { url: 'https://abc.supabase.co', anon_key: 'sb_publishable_test' })
  t.equal(r.json().demo, null)
  const page = await h.app.inject({ method: 'GET', url: '/' })
  t.match(String(page.headers['content-security-policy']), /connect-src 'self' https:\/\/abc\.supabase\.co wss:\/\/abc\.supabase\.co/)
})
