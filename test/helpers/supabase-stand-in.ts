// A Supabase project stand-in on REAL HTTP (a browser cannot go through nock): the emulated
// PostgREST + Auth of postgrest-emulator.ts behind `http.createServer`, and the Realtime stand-in
// (realtime-emulator.ts) on the same port's WebSocket upgrades, every answer computed by the real
// Postgres behind it. CORS answers like Supabase's gateway (any origin, the request's headers),
// so that supabase-js in a page of another origin can call it.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSupabaseHandler } from './postgrest-emulator.ts'
import type { SupabaseHandler } from './postgrest-emulator.ts'
import { startRealtimeEmulator } from './realtime-emulator.ts'
import type { RealtimeEmulator } from './realtime-emulator.ts'

export interface SupabaseStandIn extends Omit<SupabaseHandler, 'handle' | 'close'> {
  realtime: RealtimeEmulator
  stop (): Promise<void>
}

function cors (req: IncomingMessage): Record<string, string> {
  return {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS',
    'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization,apikey,content-type,x-client-info'),
    'access-control-expose-headers': 'content-range,x-supabase-api-version',
    'access-control-max-age': '3600'
  }
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

export async function startSupabaseStandIn (databaseUrl: string, opts: { jwtSecret?: string } = {}): Promise<SupabaseStandIn> {
  let handler: SupabaseHandler | undefined
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, cors(req)).end()
        return
      }
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req)
      const headers = new Headers()
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v)
      const request = new Request(new URL(req.url ?? '/', handler!.url), { method: req.method, headers, body })
      try {
        const [status, text, h] = await handler!.handle(request)
        res.writeHead(status, { ...cors(req), ...h }).end(text)
      } catch {
        // an injected network failure (or a bug): the connection dies without an answer
        req.socket.destroy()
      }
    })()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  handler = await createSupabaseHandler(databaseUrl, { url, ...opts })
  const realtime = await startRealtimeEmulator(handler, databaseUrl)
  server.on('upgrade', (req, socket, head) => realtime.handleUpgrade(req, socket, head))
  const { handle: _handle, close, ...rest } = handler
  return {
    ...rest,
    get authUserCalls () { return handler!.authUserCalls },
    realtime,
    async stop () {
      await realtime.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await close()
    }
  }
}
