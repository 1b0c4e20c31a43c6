// Chromium from Debian (/usr/bin/chromium) driven by playwright-core, which downloads no browser.
// Used by the browser suite, bench/dashboard.ts and scripts/screenshot.ts.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

export interface Browser {
  context: BrowserContext
  /** A new tab; its console errors and page errors are collected in `errors`. */
  newPage (): Promise<Page & { errors: string[] }>
  close (): Promise<void>
}

/** A persistent context on a new empty profile (--user-data-dir), deleted on close. */
export async function launch (opts: { width?: number, height?: number } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'workflow-sync-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 }
  })
  // The persistent context opens one blank tab: close it so every tab is one of ours.
  for (const p of context.pages()) await p.close()
  return {
    context,
    async newPage () {
      const page = await context.newPage() as Page & { errors: string[] }
      page.errors = []
      page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()) })
      page.on('pageerror', (e) => { page.errors.push(e.message) })
      return page
    },
    async close () {
      await context.close().catch(() => {})
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
