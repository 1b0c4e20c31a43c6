// Prometheus metrics: the app's own registry (never prom-client's global one, so that several
// instances in one process never collide), process metrics shared by every instance of the
// process, and typed handles for the code that records syncs, ingestion and event streams.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client'
import type { PoolStats } from '../db/database.ts'
import type { N8nCallInfo } from '../services/n8n-client.ts'

export type SyncMetricStatus = 'success' | 'partial' | 'failed'

export interface AppMetrics {
  /** The app's registry: register further metrics here (`registers: [app.metrics.registry]`). */
  readonly registry: Registry
  /** Seconds per sync run, by sync_type (user, workflows, all, cleanup...) and status. */
  readonly syncDuration: Histogram<'sync_type' | 'status'>
  /** Sync runs finished, by sync_type and status (success, partial, failed). */
  readonly syncOutcomes: Counter<'sync_type' | 'status'>
  /** n8n executions written to the ledger. */
  readonly executionsIngested: Counter
  /** Server-Sent Event streams open now: inc() when a stream opens, dec() when it ends. */
  readonly openEventStreams: Gauge
  /** Records one finished sync run on syncDuration, syncOutcomes and executionsIngested. */
  recordSync (run: { syncType: string, status: SyncMetricStatus, durationMs: number, executionsIngested?: number }): void
  /** The exposition: this app's metrics and the process metrics, in the Prometheus text format. */
  render (): Promise<{ contentType: string, body: string }>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics
  }
}

export const METRIC_PREFIX = 'workflow_sync_'
/** The route label of requests that matched no route (404s of unknown paths, bad URLs). */
export const UNMATCHED_ROUTE = '__unmatched__'

const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const N8N_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const SYNC_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

// ---------------------------------------------------------------------------
// A histogram for the per-request hot path. prom-client's Histogram costs ~400 ns per observe
// (a label object, validation and a hash string each time, even through .labels()); this one
// looks a series up once and then observes with a few array writes. It plugs into a prom-client
// Registry through the public metric shape (`get()`), so the exposition is prom-client's own.

export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  /** Per bucket (not cumulative); the last slot is above the highest bound. */
  readonly counts: Float64Array
  sum: number
  count: number
}

export class FastHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  readonly labelNames: readonly string[]
  readonly buckets: readonly number[]
  readonly #series = new Map<string, HistogramSeries>()

  constructor (opts: { name: string, help: string, labelNames: readonly string[], buckets: readonly number[] }) {
    const sorted = [...opts.buckets].sort((a, b) => a - b)
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new TypeError(`${opts.name}: buckets must be distinct finite numbers`)
    }
    this.name = opts.name
    this.help = opts.help
    this.labelNames = [...opts.labelNames]
    this.buckets = sorted
  }

  /** The series for these label values (in labelNames order), created on first use: cache it. */
  series (values: readonly string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) throw new TypeError(`${this.name}: expected ${this.labelNames.length} label values`)
    const key = values.join('\u0000')
    let s = this.#series.get(key)
    if (s === undefined) {
      const labels: Record<string, string> = {}
      this.labelNames.forEach((n, i) => { labels[n] = values[i]! })
      s = { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 }
      this.#series.set(key, s)
    }
    return s
  }

  observe (s: HistogramSeries, value: number): void {
    const b = this.buckets
    const n = b.length
    let i = 0
    while (i < n && value > b[i]!) i++
    s.counts[i]!++
    s.sum += value
    s.count++
  }

  async get (): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: Array<MetricValueWithName<string>> = []
    const bucketName = `${this.name}_bucket`
    for (const s of this.#series.values()) {
      let acc = 0
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!
        values.push({ labels: { ...s.labels, le: this.buckets[i]! }, value: acc, metricName: bucketName })
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucketName })
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` })
    }
    // prom-client's typings declare `type` as a numeric enum; at runtime (and in the registry) it is the string.
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values } as unknown as MetricObjectWithValues<MetricValueWithName<string>>
  }

  reset (): void {
    this.#series.clear()
  }
}

// ---------------------------------------------------------------------------
// Process metrics (CPU, memory, event loop lag, GC, handles...) describe the process, not an app
// instance: collected once per process into a registry of their own (each collection starts a GC
// observer and an event-loop monitor that live as long as the process).

let processRegistry: Registry | undefined

function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry, prefix: METRIC_PREFIX })
  }
  return processRegistry
}

// ---------------------------------------------------------------------------

async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const registry = new Registry()
  const registers = [registry]

  // HTTP requests: route template × method × status code, observed once per answer.
  const http = new FastHistogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'Time to answer HTTP requests, by route template (__unmatched__ when no route matched), method and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: HTTP_BUCKETS
  })
  registry.registerMetric(http as unknown as Histogram)
  // route → method → status → series: three map reads per request once warm, no label objects.
  // Bounded: route templates, the methods Node's parser accepts, status codes.
  const byRoute = new Map<string, Map<string, Map<number, HistogramSeries>>>()
  const seriesFor = (route: string, method: string, status: number): HistogramSeries => {
    let byMethod = byRoute.get(route)
    if (byMethod === undefined) byRoute.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let s = byStatus.get(status)
    if (s === undefined) byStatus.set(status, s = http.series([method, route, String(status)]))
    return s
  }
  app.addHook('onResponse', (request, reply, done) => {
    http.observe(seriesFor(request.routeOptions.url ?? UNMATCHED_ROUTE, request.method, reply.statusCode), reply.elapsedTime / 1000)
    done()
  })

  // n8n calls: one report per attempt (outcome ok | error | retry).
  const n8nDuration = new Histogram({
    name: `${METRIC_PREFIX}n8n_request_duration_seconds`,
    help: 'Time of each n8n API call attempt, by method, route template and outcome (ok, error, retry)',
    labelNames: ['method', 'route', 'outcome'] as const,
    buckets: N8N_BUCKETS,
    registers
  })
  const n8nErrors = new Counter({
    name: `${METRIC_PREFIX}n8n_request_errors_total`,
    help: 'Failed n8n API call attempts, by method, route template, outcome (error: given up; retry: another attempt follows) and HTTP status (none when n8n did not answer)',
    labelNames: ['method', 'route', 'outcome', 'status'] as const,
    registers
  })
  const n8nChildren = new Map<string, { observe: (v: number) => void }>()
  const errorChildren = new Map<string, { inc: (v?: number) => void }>()
  app.n8nCallObservers.push((info: N8nCallInfo) => {
    const key = `${info.method} ${info.route} ${info.outcome}`
    let d = n8nChildren.get(key)
    if (d === undefined) n8nChildren.set(key, d = n8nDuration.labels(info.method, info.route, info.outcome))
    d.observe(info.durationMs / 1000)
    if (info.outcome !== 'ok') {
      const status = info.status === null ? 'none' : String(info.status)
      const ekey = `${key} ${status}`
      let e = errorChildren.get(ekey)
      if (e === undefined) errorChildren.set(ekey, e = n8nErrors.labels(info.method, info.route, info.outcome, status))
      e.inc()
    }
  })

  // Collect-on-scrape metrics (here and below) are registered by hand: nothing else holds them.
  // Rate limits: the limiter's own count of the requests it refused (each answered 429).
  let rateLimitedSeen = 0
  registry.registerMetric(new Counter({
    name: `${METRIC_PREFIX}rate_limited_requests_total`,
    registers: [], // none by construction (not prom-client's global one): registerMetric adds it to this app's
    help: 'Requests refused by the rate limiter (answered 429 rate_limited)',
    collect () {
      const now = app.rateLimitedCount()
      if (now > rateLimitedSeen) {
        this.inc(now - rateLimitedSeen)
        rateLimitedSeen = now
      }
    }
  }))

  // Database pool, read on every scrape.
  // (Supabase mode has no pool: the gauges stay empty.)
  const poolGauge = (name: string, help: string, pick: (s: PoolStats) => number): void => {
    registry.registerMetric(new Gauge({
      name: `${METRIC_PREFIX}db_pool_${name}`,
      registers: [], // none by construction (not prom-client's global one): registerMetric adds it to this app's
      help,
      collect () {
        const stats = app.store.poolStats()
        if (stats) this.set(pick(stats))
      }
    }))
  }
  poolGauge('connections_total', 'Connections the database pool holds (idle and in use)', (s) => s.total)
  poolGauge('connections_idle', 'Idle connections in the database pool', (s) => s.idle)
  poolGauge('waiting_clients', 'Queries waiting for a connection from the database pool', (s) => s.waiting)
  poolGauge('connections_max', 'Upper bound of the database pool', (s) => s.max)

  // Handles for the sync engine and the event streams.
  const syncDuration = new Histogram({
    name: `${METRIC_PREFIX}sync_duration_seconds`,
    help: 'Time of sync runs, by sync_type and status (success, partial, failed)',
    labelNames: ['sync_type', 'status'] as const,
    buckets: SYNC_BUCKETS,
    registers
  })
  const syncOutcomes = new Counter({
    name: `${METRIC_PREFIX}sync_runs_total`,
    help: 'Sync runs finished, by sync_type and status (success, partial, failed)',
    labelNames: ['sync_type', 'status'] as const,
    registers
  })
  const executionsIngested = new Counter({
    name: `${METRIC_PREFIX}executions_ingested_total`,
    help: 'n8n executions written to the execution ledger',
    registers
  })
  const openEventStreams = new Gauge({
    name: `${METRIC_PREFIX}event_streams_open`,
    help: 'Server-Sent Event streams (GET /events) open now',
    registers
  })

  const metrics: AppMetrics = {
    registry,
    syncDuration,
    syncOutcomes,
    executionsIngested,
    openEventStreams,
    recordSync ({ syncType, status, durationMs, executionsIngested: ingested }) {
      syncDuration.labels(syncType, status).observe(durationMs / 1000)
      syncOutcomes.labels(syncType, status).inc()
      if (ingested !== undefined && ingested > 0) executionsIngested.inc(ingested)
    },
    async render () {
      // Merged per scrape (a cheap copy of two name → metric tables), so that metrics registered
      // on app.metrics.registry later are exposed too.
      const merged = Registry.merge([registry, processMetrics()])
      // prom-client writes NaN as `Nan` (e.g. the event-loop lag before its first sample); the
      // format says `NaN`. Prometheus reads either, stricter parsers only the latter.
      const body = (await merged.metrics()).replace(/ Nan$/gm, ' NaN')
      return { contentType: registry.contentType, body }
    }
  }
  app.decorate('metrics', metrics)
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['config', 'db', 'n8n', 'rate-limit'] })
