// Live workflow events for GET /events (Server-Sent Events), fed by Postgres LISTEN/NOTIFY: the
// code lives in src/services/events/ (its invariants in events/README.md); this module is what
// the plugin, the route and the tests import.
import type { Store } from '../store/store.ts'
import { serviceScope } from '../store/scope.ts'

export { EventHub } from './events/hub.ts'
export { EventStream } from './events/stream.ts'
export { sseFrame } from './events/frames.ts'
export { defaultEventHubSettings } from './events/settings.ts'
export type {
  EventHubOptions, EventHubSettings, EventHubStats, EventListener, EventLogger, EventName, EventSink, EventSource, ListenFn,
  StreamIdentity, StreamStart
} from './events/settings.ts'

/**
 * Retention of the event log, for the cleanup cron (CleanupOptions.extraPurges): events older than
 * `hours` (default 24) are removed; a client further behind is sent `event: reset`.
 */
export function eventLogRetention (store: Store, hours = 24): { name: string, run(dryRun: boolean): Promise<number> } {
  return {
    name: 'workflow_events',
    run: (dryRun) => store.purgeEventLog(serviceScope, hours, dryRun)
  }
}
