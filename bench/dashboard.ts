// Dashboard load in a real browser (Debian's Chromium via playwright-core): how long `npm start`'s
// default setup (embedded PGlite, development demo user) takes to show 50 workflows at /.
// The service runs as `npm start` runs it (its own process, production heap flags); 50 workflows
// are created through the API (n8n is a closed port here, so they stay `pending`: the page's
// work is the same). Each figure is navigation start → the moment the loaded table is on screen
// (a performance mark the page sets), with the navigation-timing milestones beside it.
//   cold: a new browser profile per load (nothing cached); warm: reloads in one tab (modules and
//   the list revalidated by ETag).
// Target (issue 13): < 1 s; the old guide: < 3 s. Prints figures; asserts nothing.
// BENCH_BEFORE_DIR=<a checkout of an older commit, with node_modules> also runs that checkout's
// service in the same run, each load alternating between the two, for before/after figures.
//   npm run bench:dashboard            (BENCH_COLD=5 BENCH_WARM=15 to change the counts)
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'
import { launch } from '../test-browser/browser.ts'
import { PRODUCTION_NODE_FLAGS } from './lib.ts'

const ROWS = 50
const COLD = Number(process.env.BENCH_COLD ?? 5)
const WARM = Number(process.env.BENCH_WARM ?? 15)

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)) })
  })
}

interface Sample { shown: number, ttfb: number, dcl: number, load: number, requests: number, resources?: string[] }

async function measure (page: Page, url: string, reload: boolean): Promise<Sample> {
  if (reload) await page.reload({ waitUntil: 'commit' })
  else await page.goto(url, { waitUntil: 'commit' })
  // These run in the page: browser globals through `globalThis` (the project's types are Node's).
  await page.waitForFunction((n) => (globalThis as any).performance.getEntriesByName('dashboard:workflows-shown')[0]?.detail?.rows === n, ROWS, { timeout: 30_000 })
  return await page.evaluate(() => {
    const perf = (globalThis as any).performance
    const nav = perf.getEntriesByType('navigation')[0]
    const shown = perf.getEntriesByName('dashboard:workflows-shown')[0].startTime
    return { shown, ttfb: nav.responseStart, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, requests: perf.getEntriesByType('resource').length + 1, resources: perf.getEntriesByType('resource').map((r: any) => `${r.name.replace(/^https?:\/\/[^/]+/, '')} ${Math.round(r.startTime)}+${Math.round(r.duration)}`) }
  }) as Sample
}

function summary (label: string, xs: Sample[]): string {
  const q = (k: 'shown' | 'ttfb' | 'dcl' | 'load' | 'requests', p: number): number => {
    const s = xs.map((x) => x[k]).sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!
  }
  const f = (v: number): string => `${Math.round(v)} ms`
  return `${label.padEnd(11)} n=${String(xs.length).padEnd(3)} shown: median ${f(q('shown', 0.5))}, p95 ${f(q('shown', 0.95))}, max ${f(q('shown', 1))} | ` +
    `TTFB ${f(q('ttfb', 0.5))}, DOMContentLoaded ${f(q('dcl', 0.5))}, load ${f(q('load', 0.5))} (medians) | ${q('requests', 0.5)} requests`
}

interface Service { label: string, base: string, stop: () => Promise<void> }

/** Starts `npm start`'s setup from `cwd` on a fresh PGlite directory and creates the workflows. */
async function startService (label: string, cwd: string): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'workflow-sync-bench-dashboard-'))
  const port = await freePort()
  const server = spawn(process.execPath, [...PRODUCTION_NODE_FLAGS, 'src/server.ts'], {
    cwd,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', PGLITE_DIR: join(dir, 'pglite'), LOG_LEVEL: 'warn', NODE_ENV: 'development', N8N_API_URL: 'http://127.0.0.1:9/api/v1', N8N_API_KEY: 'none', RATE_LIMIT_MAX: '100000', DATABASE_URL: '', SUPABASE_URL: '', SUPABASE_JWT_SECRET: '', SUPABASE_ANON_KEY: '' },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const base = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    server.kill('SIGTERM')
    await new Promise((resolve) => { if (server.exitCode !== null) resolve(null); else server.once('exit', resolve) })
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Up to 240 s, like the spawned-server tests: PGlite's first boot (migrations) is slow on a busy machine.
    const deadline = Date.now() + 240_000
    for (;;) {
      if (await fetch(`${base}/health`).then((r) => r.ok, () => false)) break
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`${label}: the service did not start (exit code ${server.exitCode})`)
      await sleep(250)
    }
    const cfg = await (await fetch(`${base}/dashboard/config.json`)).json() as { data_mode: string, demo: { access_token: string } | null }
    if (!cfg.demo) throw new Error('no demo user: the bench needs the development default')
    const auth = { authorization: `Bearer ${cfg.demo.access_token}`, 'content-type': 'application/json' }
    const t0 = performance.now()
    for (let i = 0; i < ROWS; i++) {
      const r = await fetch(`${base}/workflows`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ name: `Bench workflow ${String(i).padStart(2, '0')}`, nodes: [{ name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { httpMethod: 'POST', path: `bench-${i}` } }], connections: {}, settings: {} })
      })
      if (r.status !== 201) throw new Error(`POST /workflows → ${r.status} ${await r.text()}`)
    }
    const list = await fetch(`${base}/workflows?limit=100`, { headers: auth })
    const listBytes = (await list.arrayBuffer()).byteLength
    console.log(`${label}: embedded (${cfg.data_mode}), ${ROWS} workflows created in ${Math.round(performance.now() - t0)} ms; GET /workflows?limit=100 = ${listBytes} bytes`)
  } catch (err) { await stop(); throw err }
  return { label, base, stop }
}

const beforeDir = process.env.BENCH_BEFORE_DIR
const services: Service[] = []
try {
  if (beforeDir) services.push(await startService('before', beforeDir))
  services.push(await startService(beforeDir ? 'after' : 'service', process.cwd()))

  const cold = new Map<Service, Sample[]>(services.map((s) => [s, []]))
  for (let i = 0; i < COLD + 1; i++) {
    for (const svc of services) {
      const b = await launch()
      try {
        const s = await measure(await b.newPage(), `${svc.base}/`, false)
        if (i > 0) cold.get(svc)!.push(s) // the first launch also warms the OS file cache and the service's JIT
        if (process.env.BENCH_VERBOSE && i > 0) console.log(svc.label, s.resources)
      } finally { await b.close() }
    }
  }
  const warm = new Map<Service, Sample[]>(services.map((s) => [s, []]))
  const b = await launch()
  try {
    const pages = new Map<Service, Page & { errors: string[] }>()
    for (const svc of services) {
      const page = await b.newPage()
      pages.set(svc, page)
      await measure(page, `${svc.base}/`, false)
    }
    for (let i = 0; i < WARM; i++) {
      for (const svc of services) {
        const s = await measure(pages.get(svc)!, `${svc.base}/`, true)
        warm.get(svc)!.push(s)
        if (process.env.BENCH_VERBOSE && i === 0) console.log(svc.label, 'warm', s.resources)
      }
    }
    for (const [svc, page] of pages) if (page.errors.length) console.log(`${svc.label}: console errors: ${page.errors.join(' | ')}`)
  } finally { await b.close() }
  console.log(`dashboard showing ${ROWS} workflows (navigation start → table on screen), Chromium ${'headless'}, 1280×800:`)
  for (const svc of services) {
    const prefix = services.length > 1 ? `${svc.label} ` : ''
    console.log(summary(`${prefix}cold`, cold.get(svc)!))
    console.log(summary(`${prefix}warm`, warm.get(svc)!))
  }
  console.log('target < 1000 ms (issue 13); guide < 3000 ms')
} finally {
  for (const svc of services) await svc.stop()
}
