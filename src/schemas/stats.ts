import { z } from 'zod'

export const EXECUTION_STATUSES = ['success', 'error', 'crashed', 'canceled', 'waiting', 'running', 'new', 'unknown'] as const

export const statsBucket = z.enum(['hour', 'day'])

export const executionStatsQuery = z.object({
  bucket: statsBucket.default('hour').describe('Bucket size (UTC hours or UTC days)'),
  since: z.iso.datetime({ offset: true }).optional()
    .describe('Start of the window (ISO 8601), rounded down to its bucket. Default: the last 24 hours (hour) or 30 days (day), the current one included. At most 31 days back for hour buckets, 366 days for day buckets'),
  until: z.iso.datetime({ offset: true }).optional().describe('End of the window (exclusive, rounded up to a bucket). Default: now')
})

const countsSchema = z.object(Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, z.number().int()])) as Record<typeof EXECUTION_STATUSES[number], z.ZodNumber>)
  .describe('Executions per n8n status (any other status n8n reports counts as unknown)')

export const executionStatsFigures = z.object({
  total: z.number().int().describe('Executions started in the bucket'),
  counts: countsSchema,
  success_rate: z.number().nullable().describe('success / (success + error + crashed + canceled); null when none finished'),
  duration_count: z.number().int().describe('Executions with a start and a stop time (the durations below are over these)'),
  avg_duration_ms: z.number().nullable().describe('Average of stopped_at - started_at, exact'),
  p50_duration_ms: z.number().nullable().describe('Median duration, estimated from 10 % bins (an upper bound: the true value is at most this and more than this / 1.1)'),
  p95_duration_ms: z.number().nullable().describe('95th percentile duration (nearest rank), estimated like p50')
})

export const executionStatsTotals = executionStatsFigures.omit({ p50_duration_ms: true, p95_duration_ms: true })
  .describe('The whole window: counts, success rate and average (percentiles are per bucket)')

export const executionStatsBucket = executionStatsFigures.extend({
  start: z.string().describe('Bucket start, ISO 8601 UTC')
}).meta({ id: 'ExecutionStatsBucket' })

export const executionStatsSchema = z.object({
  bucket: statsBucket,
  since: z.string().describe('Start of the first bucket (ISO 8601 UTC)'),
  until: z.string().describe('End of the last bucket (exclusive)'),
  workflow_id: z.uuid().nullable().describe('The workflow; null on GET /stats (all of the caller\'s workflows)'),
  totals: executionStatsTotals,
  buckets: z.array(executionStatsBucket).describe('Every bucket of the window, oldest first (empty buckets included, with zeros)')
}).meta({ id: 'ExecutionStats', description: 'Executions from the ledger per time bucket, by the time they started (UTC)' })

export type ExecutionStats = z.infer<typeof executionStatsSchema>
export type ExecutionStatsFigures = z.infer<typeof executionStatsFigures>
export type ExecutionStatsTotals = z.infer<typeof executionStatsTotals>
