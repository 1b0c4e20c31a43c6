// Live workflow events for GET /events (Server-Sent Events), fed by Postgres LISTEN/NOTIFY: the
// code lives in src/services/events/ (its invariants in events/README.md); this module is what
// the plugin, the route and the tests import.

export { EventHub } from './events/hub.ts'
export { EventStream } from './events/stream.ts'
export { sseFrame } from './events/frames.ts'
export { defaultEventHubSettings } from './events/settings.ts'
export type {
  EventHubOptions, EventHubSettings, EventHubStats, EventListener, EventLogger, EventName, EventSink, EventSource, ListenFn,
  StreamIdentity, StreamStart
} from './events/settings.ts'
