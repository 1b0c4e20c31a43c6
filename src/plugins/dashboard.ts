// The reference dashboard at `/`: static ES modules from web/ (no build step), the chart library
// (uPlot's ESM build) and supabase-js's browser build served straight from node_modules, and
// GET /dashboard/config.json, which tells the page how to sign in and how to follow changes.
// web/ is read once at boot and served from memory (see web-assets.ts): index.html carries the
// config inline, so the page's first script can ask for /me and /workflows at once.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { DEMO_TOKEN_LIFETIME_S, DEMO_USER_ID, demoToken } from '../services/demo-user.ts'
import { inlineConfig, loadWebAssets, sendAsset } from './web-assets.ts'

const require = createRequire(import.meta.url)
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url))
const UPLOT_DIST = join(dirname(require.resolve('uplot/package.json')), 'dist')
const SUPABASE_UMD = join(dirname(require.resolve('@supabase/supabase-js')), 'umd')

const dashboardConfigSchema = z.object({
  data_mode: z.enum(['pg', 'pglite', 'supabase']).describe('Where the data lives (the store kind)'),
  live: z.enum(['events', 'realtime']).describe('`events`: follow GET /events; `realtime`: subscribe to Supabase Realtime'),
  supabase: z.object({ url: z.string(), anon_key: z.string() }).nullable().describe('Sign in with Supabase Auth (email + password) when set'),
  features: z.object({
    run: z.boolean().describe('POST /workflows/{id}/run exists'),
    stats: z.boolean().describe('GET /workflows/{id}/stats and GET /stats exist')
  }).describe('Optional routes this server has: the page hides the controls of missing ones'),
  demo: z.object({ user_id: z.string(), access_token: z.string(), expires_at: z.number().int() }).nullable()
    .describe('Development only (generated secret, NODE_ENV not production): the demo user\'s token, so the page signs in at once')
}).meta({ id: 'DashboardConfig' })

/** Content-Security-Policy of the pages: scripts and styles from this origin only. */
export function dashboardCsp (supabaseUrl?: string): string {
  const connect = ["'self'"]
  if (supabaseUrl) {
    const u = new URL(supabaseUrl)
    connect.push(u.origin, `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}`)
  }
  return [
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    `connect-src ${connect.join(' ')}`, "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'"
  ].join('; ')
}

async function dashboardPlugin (fastify: FastifyInstance): Promise<void> {
  const config = fastify.config
  const supabase = config.SUPABASE_URL && config.SUPABASE_ANON_KEY ? { url: config.SUPABASE_URL.replace(/\/+$/, ''), anon_key: config.SUPABASE_ANON_KEY } : null
  const csp = dashboardCsp(supabase?.url)
  const setHeaders = (reply: FastifyReply): void => {
    reply.header('content-security-policy', csp)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
  }
  // One route per file of web/ that exists at boot, so every other path keeps the API's
  // problem+json 404 and no route of the API is shadowed.
  const web = await loadWebAssets(WEB_ROOT)
  for (const [url, asset] of web.files) {
    if (url === '/index.html') continue
    fastify.get(url, { schema: { hide: true } }, async (request, reply) => { setHeaders(reply); return sendAsset(request, reply, asset, web.version) })
  }
  await fastify.register(fastifyStatic, { root: UPLOT_DIST, prefix: '/vendor/uplot/', wildcard: false, allowedPath: (p) => /^\/?uPlot\.(esm\.js|min\.css)$/.test(p), setHeaders })
  await fastify.register(fastifyStatic, { root: SUPABASE_UMD, prefix: '/vendor/supabase/', wildcard: false, decorateReply: false, allowedPath: (p) => /^\/?supabase\.js$/.test(p), setHeaders })

  // The demo token exists only where the service itself generated the secret (devAuth), which
  // config refuses under NODE_ENV=production; the NODE_ENV check here is a second lock.
  const demoEnabled = config.devAuth && config.NODE_ENV !== 'production'
  let demo: { token: string, expiresAt: number } | undefined
  const currentDemo = async (): Promise<{ token: string, expiresAt: number }> => {
    const now = Math.floor(Date.now() / 1000)
    if (!demo || demo.expiresAt - now < 3600) demo = { token: await demoToken(config.SUPABASE_JWT_SECRET!), expiresAt: now + DEMO_TOKEN_LIFETIME_S }
    return demo
  }

  let features: { run: boolean, stats: boolean } | undefined
  const dashboardConfig = async (): Promise<z.infer<typeof dashboardConfigSchema>> => {
    const d = demoEnabled ? await currentDemo() : undefined
    features ??= {
      run: fastify.hasRoute({ method: 'POST', url: '/workflows/:id/run' }),
      stats: fastify.hasRoute({ method: 'GET', url: '/workflows/:id/stats' }) && fastify.hasRoute({ method: 'GET', url: '/stats' })
    }
    return {
      data_mode: fastify.store.kind,
      features,
      live: fastify.store.kind === 'supabase' ? 'realtime' as const : 'events' as const,
      supabase,
      demo: d ? { user_id: DEMO_USER_ID, access_token: d.token, expires_at: d.expiresAt } : null
    }
  }

  // The page with its config inline (the same answer as GET /dashboard/config.json): no round
  // trip between the first script and the first API calls. Rebuilt per request (the demo token
  // is renewed), revalidated by ETag.
  const index = web.files.get('/index.html')!
  const sendIndex = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    setHeaders(reply)
    return sendAsset(request, reply, inlineConfig(index.body, JSON.stringify(await dashboardConfig())), undefined)
  }
  fastify.get('/', { schema: { hide: true } }, sendIndex)
  fastify.get('/index.html', { schema: { hide: true } }, sendIndex)

  const app = fastify.withTypeProvider<ZodTypeProvider>()
  app.get('/dashboard/config.json', {
    schema: {
      tags: ['operations'],
      operationId: 'getDashboardConfig',
      summary: 'How the dashboard at / signs in and follows changes',
      description: 'Public. `supabase` is set when SUPABASE_URL and SUPABASE_ANON_KEY are (the anon key is public by design). `demo` carries a token only in development on the generated secret (no SUPABASE_JWT_SECRET/SUPABASE_URL, NODE_ENV not production); it is null everywhere else. The page at / carries the same object inline.',
      security: [],
      response: { 200: dashboardConfigSchema }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return await dashboardConfig()
  })
}

export default fp(dashboardPlugin, { name: 'dashboard', dependencies: ['config', 'db'] })
