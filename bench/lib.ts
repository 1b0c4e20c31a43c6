import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

/** The heap flags `npm start` and the Docker image run the service with (see package.json). */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=256']

export interface Started<M> {
  child: ChildProcess
  message: M
  stop(): Promise<void>
}

/** Starts a bench server in its own process (the load generator must not share its event loop). */
export async function startServer<M extends { port: number }> (file: string): Promise<Started<M>> {
  const child = fork(file, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--disable-warning=ExperimentalWarning', ...PRODUCTION_NODE_FLAGS] })
  const message = await new Promise<M>((resolve, reject) => {
    child.once('message', (m) => resolve(m as M))
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)))
  })
  return {
    child,
    message,
    async stop () {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      if (child.connected) child.send('stop')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      child.kill(child.connected ? 0 : 'SIGTERM')
      if (!child.connected) child.kill('SIGTERM')
      await exited
      clearTimeout(t)
    }
  }
}

/** Peak resident set size of a process so far (VmHWM), in MB. */
export function peakRssMb (pid: number | undefined): number {
  if (!pid) return NaN
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : NaN
}

export interface LoadResult {
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  /** Requests completed in the run. */
  total: number
  /** Server CPU time (user + system) per request in µs, when the server answers 'cpu' messages. */
  cpuUs?: number
}

/** Process CPU time of a bench server (it answers the 'cpu' message with process.cpuUsage()). */
export function serverCpu (child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      const cpu = (m as { cpu?: { user: number, system: number } }).cpu
      if (!cpu) return
      child.off('message', on)
      resolve(cpu.user + cpu.system)
    }
    child.on('message', on)
    child.send('cpu')
  })
}

export async function load (url: string, opts: { connections?: number, duration?: number, headers?: Record<string, string>, server?: ChildProcess } = {}): Promise<LoadResult> {
  const before = opts.server ? await serverCpu(opts.server) : 0
  const r = await autocannon({
    url,
    connections: opts.connections ?? 50,
    pipelining: 1,
    duration: opts.duration ?? 10,
    headers: opts.headers ?? {}
  })
  const out: LoadResult = { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx, total: r.requests.total }
  if (opts.server) out.cpuUs = Math.round((await serverCpu(opts.server) - before) / Math.max(1, r.requests.total))
  return out
}
