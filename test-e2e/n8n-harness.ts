// Boots a REAL n8n (installed from npm by scripts/install-n8n.sh into a cache folder outside the
// repository) for the end-to-end suite: headless, loopback only, fresh user folder (SQLite) per
// start, owner set up and an API key with every scope created.
//
//   const n8n = await startN8n({ version: '1.123.5', port: 5679 })
//   const api = n8nApi(n8n.apiUrl, n8n.apiKey)
//   const { status, body } = await api.get('/workflows')
//   await n8n.stop()
//
// Runs under Node 24 type stripping (no enums/namespaces/parameter properties).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, openSync, closeSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const DEFAULT_N8N_VERSIONS = ['1.123.5', '2.30.8']

/** Statuses after which an n8n execution does not change any more. */
export const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])

/** Polls fn until it answers something truthy; throws, naming `what`, after timeoutMs. */
export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

export interface StartN8nOptions {
  version: string
  port: number
  /** Where n8n's stdout/stderr go. Default: <tmpdir>/workflow-sync-n8n-<version>-<port>.log (kept after stop). */
  logFile?: string
  /** Max wait for GET /healthz, ms. Default 120 000. */
  startTimeoutMs?: number
  /** Extra environment for n8n (wins over the harness defaults). */
  env?: Record<string, string>
  /**
   * Restart of an instance stopped with `stop({ keepData: true })`: its user folder (SQLite with
   * the owner, the API key, the workflows and executions) and its API key. Owner and key set-up
   * are skipped; stop() then leaves the folder to the caller unless it is the last stop.
   */
  resume?: { userFolder: string, apiKey: string }
}

export interface N8nInstance {
  version: string
  /** http://127.0.0.1:<port> */
  baseUrl: string
  /** baseUrl + '/api/v1' */
  apiUrl: string
  apiKey: string
  /** Owner account created by the harness (for /rest calls if ever needed). */
  owner: { email: string, password: string }
  logFile: string
  userFolder: string
  pid: number
  /** Kills n8n's whole process group and removes the temp user folder (kept with `keepData`, for `resume`). Idempotent. */
  stop(opts?: { keepData?: boolean }): Promise<void>
}

export interface N8nResponse<T = any> {
  status: number
  body: T
  headers: Headers
}

/** Cache folder used by scripts/install-n8n.sh (keep both in sync). */
export function n8nCacheDir (): string {
  const env = process.env
  if (env.WORKFLOW_SYNC_CACHE) return env.WORKFLOW_SYNC_CACHE
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache')
  return join(base, 'workflow-sync')
}

/** Node major that installed and must run a given n8n version (see scripts/install-n8n.sh). */
export function nodeMajorFor (version: string): number {
  const major = Number(version.split('.')[0])
  return major <= 1 ? 20 : 24
}

export interface N8nInstall {
  version: string
  dir: string
  n8nBin: string
  nodeBin: string
}

/** Locates a completed cached install; throws a clear error when it is missing. */
export function locateN8n (version: string): N8nInstall {
  const cache = n8nCacheDir()
  const dir = join(cache, `n8n-${version}`)
  const stamp = join(dir, '.install-complete')
  const n8nBin = join(dir, 'node_modules', 'n8n', 'bin', 'n8n')
  const hint = `run \`scripts/install-n8n.sh ${version}\` from the repository root first ` +
    '(installs n8n from npm into the cache: 4-8 min and 1.6-3.1 GB per version; ' +
    'set WORKFLOW_SYNC_CACHE to use another cache folder)'
  if (!existsSync(stamp) || !existsSync(n8nBin)) {
    throw new Error(`n8n ${version} is not installed in ${dir} (no completed install): ${hint}`)
  }
  let nodeBin = join(cache, `node${nodeMajorFor(version)}`, 'node_modules', 'node', 'bin', 'node')
  try {
    const info = JSON.parse(readFileSync(stamp, 'utf8')) as { node?: string }
    if (info.node && existsSync(info.node)) nodeBin = info.node
  } catch {
    // old/odd stamp: fall back to the layout
  }
  if (!existsSync(nodeBin)) {
    throw new Error(`node binary ${nodeBin} for n8n ${version} is missing: ${hint}`)
  }
  return { version, dir, n8nBin, nodeBin }
}

function tail (file: string, lines = 60): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

function portAnswers (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
    s.setTimeout(1000, () => { s.destroy(); resolve(false) })
  })
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

function killGroup (pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // group already gone
  }
}

// Env vars from the parent that would change how n8n boots: never inherited.
const STRIPPED_ENV = /^(N8N_|DB_|EXECUTIONS_|QUEUE_|WEBHOOK_URL$|GENERIC_TIMEZONE$|NODE_OPTIONS$|NODE_FUNCTION_ALLOW|CREDENTIALS_|EXTERNAL_|VUE_APP_|OFFLOAD_)/

function n8nEnv (opts: { version: string, installDir: string, port: number, userFolder: string, brokerPort: number, nodeBin: string, extra?: Record<string, string> }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!STRIPPED_ENV.test(k)) env[k] = v
  }
  const base = `http://127.0.0.1:${opts.port}`
  Object.assign(env, {
    // n8n and anything it spawns (task runner) use the node it was installed with.
    PATH: `${dirname(opts.nodeBin)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    NODE_ENV: 'production',
    TZ: 'UTC',
    GENERIC_TIMEZONE: 'UTC',
    HOME: opts.userFolder,
    N8N_USER_FOLDER: opts.userFolder,
    // loopback only
    N8N_PORT: String(opts.port),
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_HOST: '127.0.0.1',
    N8N_PROTOCOL: 'http',
    N8N_EDITOR_BASE_URL: `${base}/`,
    N8N_SECURE_COOKIE: 'false',
    N8N_ENCRYPTION_KEY: 'workflow-sync-e2e-not-a-secret',
    N8N_USER_MANAGEMENT_JWT_SECRET: 'workflow-sync-e2e-jwt-not-a-secret',
    N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'true',
    // no phoning home, nothing optional
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_DIAGNOSTICS_CONFIG_FRONTEND: '',
    N8N_DIAGNOSTICS_CONFIG_BACKEND: '',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_HIRING_BANNER_ENABLED: 'false',
    N8N_COMMUNITY_PACKAGES_ENABLED: 'false',
    N8N_REINSTALL_MISSING_PACKAGES: 'false',
    N8N_LICENSE_AUTO_RENEW_ENABLED: 'false',
    N8N_AI_ENABLED: 'false',
    EXTERNAL_FRONTEND_HOOKS_URLS: '',
    N8N_PUBLIC_API_SWAGGERUI_DISABLED: 'true',
    // task runners: 2.x always starts an internal one (JS; the Python one fails to start without
    // its venv, harmless): keep its broker on loopback and off our ports (default 5679).
    N8N_RUNNERS_MODE: 'internal',
    N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
    N8N_RUNNERS_BROKER_PORT: String(opts.brokerPort),
    N8N_BLOCK_ENV_ACCESS_IN_NODE: 'true',
    // fast, quiet, deterministic
    DB_TYPE: 'sqlite',
    N8N_LOG_LEVEL: 'info',
    N8N_LOG_OUTPUT: 'console',
    N8N_GRACEFUL_SHUTDOWN_TIMEOUT: '5',
    EXECUTIONS_MODE: 'regular',
    DB_SQLITE_POOL_SIZE: '2',
    N8N_GIT_NODE_DISABLE_BARE_REPOS: 'true',
  })
  const major = Number(opts.version.split('.')[0])
  // 1.x: run Code nodes in-process (no runner child, no broker).
  if (major <= 1) env.N8N_RUNNERS_ENABLED = 'false'
  // Backend modules that call out to the internet at startup (2.x: mcp-registry fetches
  // https://api.n8n.io/api/mcp-servers). Only names this version knows: unknown names abort startup.
  const known = knownModules(opts.installDir)
  const disabled = ['mcp-registry', 'community-packages', 'instance-ai'].filter((m) => known.includes(m))
  if (disabled.length) env.N8N_DISABLED_MODULES = disabled.join(',')
  Object.assign(env, opts.extra ?? {})
  return env
}

/** MODULE_NAMES of the installed n8n (N8N_DISABLED_MODULES rejects any other name). */
function knownModules (installDir: string): string[] {
  try {
    const src = readFileSync(join(installDir, 'node_modules', '@n8n', 'backend-common', 'dist', 'modules', 'modules.config.js'), 'utf8')
    const list = /MODULE_NAMES\s*=\s*\[([^\]]*)\]/.exec(src)?.[1] ?? ''
    return [...list.matchAll(/'([^']+)'/g)].map((m) => m[1] as string)
  } catch {
    return []
  }
}

async function waitReady (baseUrl: string, child: ChildProcess, timeoutMs: number, logFile: string, version: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  // /healthz answers ok as soon as the HTTP server listens, i.e. before the database migrations
  // ran and before the /rest and /api routes exist (they answer 'n8n is starting up. Please wait'
  // meanwhile). So: /healthz, then /healthz/readiness (connected + migrated), then /rest/settings.
  const stages: Array<{ path: string, ok: (status: number, text: string) => boolean }> = [
    { path: '/healthz', ok: (s, text) => s === 200 && /"status"\s*:\s*"ok"/.test(text) },
    { path: '/healthz/readiness', ok: (s, text) => s === 404 || (s === 200 && /"status"\s*:\s*"ok"/.test(text)) },
    { path: '/rest/settings', ok: (s, text) => s === 200 && text.trimStart().startsWith('{') },
  ]
  let last = ''
  for (const stage of stages) {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`n8n ${version} exited during startup (code ${child.exitCode}, signal ${child.signalCode}); log ${logFile}:\n${tail(logFile)}`)
      }
      try {
        const res = await fetch(`${baseUrl}${stage.path}`, { signal: AbortSignal.timeout(2000) })
        const text = await res.text()
        last = `${stage.path} → ${res.status} ${text.slice(0, 200)}`
        if (stage.ok(res.status, text)) break
      } catch (err) {
        last = `${stage.path} → ${String((err as Error)?.message ?? err)}`
      }
      if (Date.now() > deadline) {
        throw new Error(`n8n ${version} not ready at ${baseUrl} after ${Math.round(timeoutMs / 1000)} s (last: ${last}); log ${logFile}:\n${tail(logFile)}`)
      }
      await sleep(500)
    }
  }
}

/** Cookie-authenticated call to n8n's internal /rest API (only used for owner + API key setup). */
async function rest (baseUrl: string, method: string, path: string, session: { cookie: string, browserId: string }, body?: unknown): Promise<N8nResponse> {
  const headers: Record<string, string> = { 'browser-id': session.browserId, accept: 'application/json' }
  if (session.cookie) headers.cookie = session.cookie
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${baseUrl}/rest${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  })
  for (const c of res.headers.getSetCookie()) {
    const m = /^n8n-auth=([^;]*)/.exec(c)
    if (m) session.cookie = `n8n-auth=${m[1]}`
  }
  return { status: res.status, body: await parseBody(res), headers: res.headers }
}

async function parseBody (res: Response): Promise<any> {
  const text = await res.text()
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export async function startN8n (opts: StartN8nOptions): Promise<N8nInstance> {
  const { version, port } = opts
  const install = locateN8n(version)
  if (port === 5678) throw new Error('port 5678 is reserved (a developer n8n may run there); use 5679/5680')
  if (await portAnswers(port)) {
    throw new Error(`127.0.0.1:${port} is already in use; cannot start n8n ${version} there`)
  }
  const logFile = opts.logFile ?? join(tmpdir(), `workflow-sync-n8n-${version}-${port}.log`)
  const userFolder = opts.resume?.userFolder ?? mkdtempSync(join(tmpdir(), `workflow-sync-n8n-${version}-`))
  let keepData = false
  const brokerPort = await freePort()
  const baseUrl = `http://127.0.0.1:${port}`
  const fd = openSync(logFile, 'w')
  let child: ChildProcess
  try {
    child = spawn(install.nodeBin, [install.n8nBin, 'start'], {
      cwd: userFolder,
      env: n8nEnv({ version, installDir: install.dir, port, userFolder, brokerPort, nodeBin: install.nodeBin, extra: opts.env }),
      stdio: ['ignore', fd, fd],
      detached: true, // own process group: stop() kills n8n and its task runner together
    })
  } finally {
    closeSync(fd)
  }
  const pid = child.pid
  if (pid === undefined) {
    rmSync(userFolder, { recursive: true, force: true })
    throw new Error(`could not spawn ${install.nodeBin} ${install.n8nBin}`)
  }
  // Do not keep the test process alive for n8n; stop() is still expected.
  child.unref()
  let spawnError: Error | undefined
  child.on('error', (err) => { spawnError = err })

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(pid, 'SIGTERM')
        const timedOut = await Promise.race([exited(child).then(() => false), sleep(15_000).then(() => true)])
        if (timedOut) {
          killGroup(pid, 'SIGKILL')
          await Promise.race([exited(child), sleep(5_000)])
        }
      }
      // stragglers of the group (task runner) if n8n itself exited first
      killGroup(pid, 'SIGKILL')
      if (!keepData) rmSync(userFolder, { recursive: true, force: true })
    })()
    return stopped
  }
  // Safety nets when the test process goes away without calling stop(): on exit, and on the
  // usual termination signals (then re-raised so the process still dies of it).
  const cleanupSync = (): void => {
    killGroup(pid, 'SIGKILL')
    rmSync(userFolder, { recursive: true, force: true })
  }
  const onExit = (): void => cleanupSync()
  const onSignal = (signal: NodeJS.Signals): void => {
    cleanupSync()
    removeSafetyNets()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  const removeSafetyNets = (): void => {
    process.removeListener('exit', onExit)
    for (const sig of signals) process.removeListener(sig, onSignal)
  }
  process.once('exit', onExit)
  for (const sig of signals) process.once(sig, onSignal)

  try {
    await waitReady(baseUrl, child, opts.startTimeoutMs ?? 120_000, logFile, version)

    if (opts.resume) {
      return {
        version,
        baseUrl,
        apiUrl: `${baseUrl}/api/v1`,
        apiKey: opts.resume.apiKey,
        owner: { email: 'owner@workflow-sync.test', password: 'E2e-Owner-Passw0rd' },
        logFile,
        userFolder,
        pid,
        stop: async (o?: { keepData?: boolean }) => { keepData = o?.keepData === true; await stop(); removeSafetyNets() }
      }
    }
    const owner = { email: 'owner@workflow-sync.test', password: 'E2e-Owner-Passw0rd' }
    const session = { cookie: '', browserId: randomUUID() }
    const setup = await rest(baseUrl, 'POST', '/owner/setup', session, {
      email: owner.email, firstName: 'E2E', lastName: 'Owner', password: owner.password,
    })
    if (setup.status !== 200 || !session.cookie) {
      throw new Error(`n8n ${version}: POST /rest/owner/setup → ${setup.status} ${JSON.stringify(setup.body)}`)
    }
    const scopes = await rest(baseUrl, 'GET', '/api-keys/scopes', session)
    if (scopes.status !== 200 || !Array.isArray(scopes.body?.data)) {
      throw new Error(`n8n ${version}: GET /rest/api-keys/scopes → ${scopes.status} ${JSON.stringify(scopes.body)}`)
    }
    const created = await rest(baseUrl, 'POST', '/api-keys', session, {
      label: 'workflow-sync e2e', scopes: scopes.body.data, expiresAt: null,
    })
    const apiKey = created.body?.data?.rawApiKey
    if (created.status !== 200 || typeof apiKey !== 'string') {
      throw new Error(`n8n ${version}: POST /rest/api-keys → ${created.status} ${JSON.stringify(created.body)}`)
    }
    const instance: N8nInstance = {
      version,
      baseUrl,
      apiUrl: `${baseUrl}/api/v1`,
      apiKey,
      owner,
      logFile,
      userFolder,
      pid,
      stop: async (o?: { keepData?: boolean }) => {
        keepData = o?.keepData === true
        await stop()
        removeSafetyNets()
      },
    }
    return instance
  } catch (err) {
    await stop()
    removeSafetyNets()
    if (spawnError) throw new Error(`n8n ${version}: cannot run ${install.nodeBin}: ${spawnError.message}`, { cause: err })
    throw err
  }
}

/** POST (by default) to a production webhook: <baseUrl>/webhook/<path>. */
export async function triggerWebhook (baseUrl: string, path: string, body?: unknown, method = 'POST'): Promise<N8nResponse> {
  const res = await fetch(`${baseUrl}/webhook/${path.replace(/^\/+/, '')}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  })
  return { status: res.status, body: await parseBody(res), headers: res.headers }
}

export type Query = Record<string, string | number | boolean | undefined>

export interface N8nApi {
  request<T = any>(method: string, path: string, opts?: { body?: unknown, query?: Query }): Promise<N8nResponse<T>>
  get<T = any>(path: string, query?: Query): Promise<N8nResponse<T>>
  post<T = any>(path: string, body?: unknown): Promise<N8nResponse<T>>
  put<T = any>(path: string, body?: unknown): Promise<N8nResponse<T>>
  delete<T = any>(path: string): Promise<N8nResponse<T>>
}

/** Small wrapper over n8n's public API (X-N8N-API-KEY). Never throws on HTTP errors: check status. */
export function n8nApi (apiUrl: string, apiKey: string): N8nApi {
  const request = async <T = any>(method: string, path: string, opts: { body?: unknown, query?: Query } = {}): Promise<N8nResponse<T>> => {
    const url = new URL(apiUrl.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`))
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v))
    }
    const headers: Record<string, string> = { 'X-N8N-API-KEY': apiKey, accept: 'application/json' }
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(30_000),
    })
    return { status: res.status, body: await parseBody(res) as T, headers: res.headers }
  }
  return {
    request,
    get: (path, query) => request('GET', path, { query }),
    post: (path, body) => request('POST', path, { body }),
    put: (path, body) => request('PUT', path, { body }),
    delete: (path) => request('DELETE', path),
  }
}
