import { z } from 'zod'

export const problemSchema = z.object({
  type: z.string().describe('A URI reference naming the problem type'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().describe('Stable machine-readable code, e.g. validation_failed, not_found, n8n_unavailable'),
  requestId: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional()
    .describe('Present on validation_failed: one entry per invalid field')
}).meta({ id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' })

export type Problem = z.infer<typeof problemSchema>

const descriptions: Record<number, string> = {
  400: 'Invalid input (validation_failed)',
  401: 'Missing or invalid access token (invalid_token, token_expired)',
  403: 'Authenticated, but not allowed (forbidden)',
  404: 'Not found (also for another user\'s resource)',
  409: 'Conflict',
  412: 'If-Match does not match the current version (precondition_failed)',
  413: 'Body too large (payload_too_large)',
  422: 'n8n refused the workflow (n8n_rejected), with n8n\'s reason',
  429: 'Rate limited (rate_limited), see Retry-After',
  500: 'Unexpected error (internal)',
  502: 'n8n answered with an error (n8n_error)',
  503: 'n8n or the database is unavailable (n8n_unavailable, database_unavailable)'
}

/** Response declarations for the given problem statuses, for a route's `schema.response`. */
export function problems (...statuses: number[]): Record<number, typeof problemSchema> {
  const out: Record<number, typeof problemSchema> = {}
  for (const s of statuses) out[s] = problemSchema.describe(descriptions[s] ?? 'Problem') as typeof problemSchema
  return out
}
