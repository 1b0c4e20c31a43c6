import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { EventHub } from '../services/events.ts'
import type { EventHubSettings } from '../services/events.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Live workflow events (GET /events): one LISTEN connection, fanned out to the streams (Postgres modes only). */
    events: EventHub
  }
}

export interface EventsPluginOptions {
  settings?: Partial<EventHubSettings>
}

async function eventsPlugin (app: FastifyInstance, opts: EventsPluginOptions): Promise<void> {
  // Supabase mode has no LISTEN (no database session): GET /events answers 503 there and
  // dashboards subscribe to Supabase Realtime instead (see the route). No hub, no `app.events`.
  if (app.store.kind === 'supabase') return
  const hub = new EventHub({
    store: app.store,
    db: app.db,
    logger: app.log.child({ component: 'events' }),
    // the open-streams gauge, when the metrics plugin is registered
    ...(app.hasDecorator('metrics') ? { onStreamCount: (open: number) => { app.metrics.openEventStreams.set(open) } } : {}),
    ...(opts.settings ? { settings: opts.settings } : {})
  })
  app.decorate('events', hub)
  app.addHook('onReady', async () => { await hub.start() })
  // Streams end (with `event: shutdown`) before the server waits for its open connections.
  app.addHook('preClose', async () => { await hub.stop() })
  app.addHook('onClose', async () => { await hub.stop() })
}

export default fp(eventsPlugin, { name: 'events', dependencies: ['db'] })
