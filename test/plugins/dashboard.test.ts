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

t.test('the page carries the config inline: the same object as config.json, as data the CSP leaves unexecuted', async (t) => {
  const h = await buildTestApp({ env: { SUPABASE_JWT_SECRET: '', NODE_ENV: 'development' } })
  t.teardown(() => h.close())
  const page = await h.app.inject({ method: 'GET', url: '/' })
  const m = /<script type="application\/json" id="dashboard-config">([^<]*)<\/script>/.exec(page.body)
  t.ok(m, 'a JSON data block')
  const inline = JSON.parse(m![1]!)
  t.same(inline, (await h.app.inject({ method: 'GET', url: '/dashboard/config.json' })).json())
  t.equal(inline.demo.user_id, DEMO_USER_ID)
  t.equal(page.headers['cache-control'], 'no-cache')
  const again = await h.app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': String(page.headers.etag) } })
  t.equal(again.statusCode, 304, 'unchanged page: 304')
  t.equal((await h.app.inject({ method: 'GET', url: '/index.html' })).body, page.body)
  const br = await h.app.inject({ method: 'GET', url: '/', headers: { 'accept-encoding': 'gzip, deflate, br' } })
  t.equal(br.headers['content-encoding'], undefined, 'built per request, sent as is')
  t.match(br.body, /id="dashboard-config"/, 'a browser asking for brotli gets the config too')
})

t.test('the config inline cannot close its element', async (t) => {
  const { inlineConfig } = await import('../../src/plugins/web-assets.ts')
  const { body } = inlineConfig(Buffer.from('<html><head></head></html>'), JSON.stringify({ x: '</script><script>alert(1)</script><!--' }))
  const html = body.toString()
  t.equal(html.match(/<\/script>/g)?.length, 1)
  t.notMatch(html, /<!--/)
  t.same(JSON.parse(/id="dashboard-config">(.*)<\/script>/.exec(html)![1]!), { x: '</script><script>alert(1)</script><!--' })
})

t.test('modules and styles: versioned URLs cached for a year, plain URLs revalidated, compressed when accepted', async (t) => {
  const h = await buildTestApp()
  t.teardown(() => h.close())
  const page = await h.app.inject({ method: 'GET', url: '/' })
  const preloads = [...page.body.matchAll(/<link rel="modulepreload" href="(\/js\/[\w-]+\.js)\?v=([\w-]+)">/g)]
  t.ok(preloads.length >= 4, 'the first modules are preloaded at the version')
  const version = preloads[0]![2]!
  t.ok(preloads.every((p) => p[2] === version), 'one version for all of web/')
  t.match(page.body, new RegExp(`<link rel="stylesheet" href="/app\\.css\\?v=${version}">`))

  const entry = await h.app.inject({ method: 'GET', url: '/js/main.js' })
  t.equal(entry.headers['cache-control'], 'no-cache', 'the entry keeps its URL and is revalidated')
  t.match(entry.body, new RegExp(`from '\\./api\\.js\\?v=${version}'`), 'its imports carry the version')
  t.match(entry.body, new RegExp(`import\\('\\./detail\\.js\\?v=${version}'\\)`), 'so do its lazy imports')
  const revalidated = await h.app.inject({ method: 'GET', url: '/js/main.js', headers: { 'if-none-match': String(entry.headers.etag) } })
  t.equal(revalidated.statusCode, 304)
  t.equal(revalidated.body, '')

  const versioned = await h.app.inject({ method: 'GET', url: `/js/dom.js?v=${version}` })
  t.equal(versioned.statusCode, 200)
  t.equal(versioned.headers['cache-control'], 'public, max-age=31536000, immutable')
  const stale = await h.app.inject({ method: 'GET', url: '/js/dom.js?v=0123456789ab' })
  t.equal(stale.headers['cache-control'], 'no-cache', 'an older version is not cached as if it were current')
  t.equal(stale.body, versioned.body)

  const { brotliDecompressSync, gunzipSync } = await import('node:zlib')
  const br = await h.app.inject({ method: 'GET', url: '/js/workflows.js', headers: { 'accept-encoding': 'gzip, deflate, br' } })
  t.equal(br.headers['content-encoding'], 'br')
  t.match(br.headers.vary, /accept-encoding/)
  t.match(br.headers['content-type'], /javascript/)
  const plain = await h.app.inject({ method: 'GET', url: '/js/workflows.js' })
  t.equal(plain.headers['content-encoding'], undefined)
  t.ok(br.rawPayload.length < plain.rawPayload.length)
  t.equal(brotliDecompressSync(br.rawPayload).toString(), plain.body)
  t.not(br.headers.etag, plain.headers.etag, 'each encoding has its own ETag')
  const gz = await h.app.inject({ method: 'GET', url: '/js/workflows.js', headers: { 'accept-encoding': 'gzip' } })
  t.equal(gz.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(gz.rawPayload).toString(), plain.body)
  const refused = await h.app.inject({ method: 'GET', url: '/js/workflows.js', headers: { 'accept-encoding': 'br;q=0, gzip;q=0' } })
  t.equal(refused.headers['content-encoding'], undefined, 'q=0 refuses an encoding')
})
