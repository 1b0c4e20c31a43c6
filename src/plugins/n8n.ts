import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { N8nClient } from '../services/n8n-client.ts'
import type { N8nCallInfo } from '../services/n8n-client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    n8n: N8nClient
    /** Observers of every n8n call (metrics). */
    n8nCallObservers: Array<(info: N8nCallInfo) => void>
  }
}

async function n8nPlugin (app: FastifyInstance, opts: { n8n?: N8nClient }): Promise<void> {
  const observers: Array<(info: N8nCallInfo) => void> = []
  const client = opts.n8n ?? new N8nClient({
    baseUrl: app.config.N8N_API_URL,
    ...(app.config.N8N_API_KEY ? { apiKey: app.config.N8N_API_KEY } : {}),
    timeoutMs: app.config.N8N_TIMEOUT_MS,
    retries: app.config.N8N_RETRIES,
    onCall: (info) => { for (const o of observers) o(info) }
  })
  if (!app.config.N8N_API_KEY && !opts.n8n) {
    app.log.warn('N8N_API_KEY is not set: n8n is not called until it is (deploys stay pending, syncs answer failed with "N8N_API_KEY is not set", /ready reports n8n unreachable)')
  }
  app.decorate('n8n', client)
  app.decorate('n8nCallObservers', observers)
}

export default fp(n8nPlugin, { name: 'n8n', dependencies: ['config'] })
