// `npm start`-like server processes for tests: spawned with a clean environment, output captured,
// waited for until they listen (and printed the demo token) or exit.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { Test } from 'tap'

export const serverFile = new URL('../../src/server.ts', import.meta.url).pathname
export const repoRoot = new URL('../../', import.meta.url).pathname

export interface ServerProcess {
  child: ChildProcess
  /** stdout + stderr so far. */
  readonly out: string
  port: string | undefined
  token: string | undefined
  exitCode: number | null
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
}

export function baseEnv (env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    N8N_API_URL: 'http://127.0.0.1:9/api/v1', // nothing listens: n8n is "down"
    N8N_RETRIES: '0',
    N8N_TIMEOUT_MS: '500',
    ...env
  }
}

/** Starts `node [args] src/server.ts` (or `args` alone when given with a script) and waits until it listens or exits. */
export async function startServer (t: Test, env: Record<string, string>, opts: { args?: string[], cwd?: string, until?: RegExp, timeoutMs?: number } = {}): Promise<ServerProcess> {
  const args = opts.args ?? [serverFile]
  const child = spawn(process.execPath, args, { env: baseEnv(env), cwd: opts.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout?.on('data', (d) => { out += String(d) })
  child.stderr?.on('data', (d) => { out += String(d) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const until = opts.until ?? /Server listening at http:\/\/[^\s"]+:\d+[\s\S]*(\n {2}eyJ[\w.-]+\n|"msg":"[^"]*ready)|Server listening at http:\/\/[^\s"]+:\d+/
  const deadline = Date.now() + (opts.timeoutMs ?? 240_000)
  while (!until.test(out) && Date.now() < deadline && child.exitCode === null) {
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))])
  }
  const proc: ServerProcess = {
    child,
    get out () { return out },
    port: /Server listening at http:\/\/[\d.]+:(\d+)/.exec(out)?.[1],
    token: /\n {2}(eyJ[\w-]+\.[\w-]+\.[\w-]+)\n/.exec(out)?.[1],
    get exitCode () { return child.exitCode },
    async stop () {
      if (child.exitCode !== null) return child.exitCode
      child.kill('SIGTERM')
      await exited
      return child.exitCode
    }
  }
  return proc
}

/** Waits for the process to exit (bounded) and answers its code. */
export async function exitOf (p: ServerProcess, timeoutMs = 240_000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs
  while (p.child.exitCode === null && p.child.signalCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return p.child.exitCode
}
