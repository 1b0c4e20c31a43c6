// What goes over the wire: light response schemas (the shape and types of the fields the service
// relies on; ids normalised to strings), their parsers, and the request bodies and path parts.
import { z } from 'zod'
import { AppError } from '../../errors.ts'
import type { N8nExecution, N8nPage, N8nWorkflow, N8nWorkflowInput } from './types.ts'

const idSchema = z.union([z.string(), z.number()]).transform(String)
const nullableIdSchema = z.union([z.string(), z.number()]).nullish().transform((v) => v == null ? null : String(v))
const nullableString = z.string().nullish().transform((v) => v ?? null)
const recordSchema = z.record(z.string(), z.unknown())

const nodeSchema = z.looseObject({ name: z.string(), type: z.string() })
const tagSchema = z.looseObject({ id: idSchema, name: z.string() })

const workflowSchema = z.looseObject({
  id: idSchema,
  name: z.string(),
  active: z.boolean(),
  nodes: z.array(nodeSchema),
  connections: recordSchema,
  // Be lenient: settings may be missing/null on very old rows.
  settings: recordSchema.nullish().transform((v) => v ?? {}),
  staticData: recordSchema.nullish(),
  createdAt: z.string(),
  updatedAt: z.string(),
  tags: z.array(tagSchema).optional()
})

const executionSchema = z.looseObject({
  id: idSchema,
  finished: z.boolean(),
  mode: z.string(),
  retryOf: nullableIdSchema,
  retrySuccessId: nullableIdSchema,
  status: z.string(),
  startedAt: nullableString,
  stoppedAt: nullableString,
  workflowId: idSchema,
  waitTill: nullableString
})

const cursorSchema = z.string().nullish().transform((v) => v == null || v === '' ? null : v)
const workflowListSchema = z.object({ data: z.array(workflowSchema), nextCursor: cursorSchema })
const executionListSchema = z.object({ data: z.array(executionSchema), nextCursor: cursorSchema })

export type Parser<T> = (json: unknown) => T

const MAX_LIMIT = 250

function parserFor<S extends z.ZodType> (schema: S): Parser<z.output<S>> {
  return (json) => {
    const r = schema.safeParse(json)
    if (r.success) return r.data
    throw r.error
  }
}

// Built once: no per-call closures.
export const parseWorkflow: Parser<N8nWorkflow> = parserFor(workflowSchema)
export const parseWorkflowList: Parser<N8nPage<N8nWorkflow>> = parserFor(workflowListSchema)
export const parseExecution: Parser<N8nExecution> = parserFor(executionSchema)
export const parseExecutionList: Parser<N8nPage<N8nExecution>> = parserFor(executionListSchema)
export const noBody: Parser<undefined> = () => undefined

export function clampLimit (limit: number): number {
  if (!Number.isFinite(limit)) return MAX_LIMIT
  return Math.min(MAX_LIMIT, Math.max(1, Math.trunc(limit)))
}

export function encodeId (id: string, what: string): string {
  if (typeof id !== 'string' || id === '' || id === '.' || id === '..') {
    throw new AppError('validation_failed', `invalid n8n ${what} id`)
  }
  return encodeURIComponent(id)
}

export function serialiseWorkflow (body: N8nWorkflowInput): string {
  // Pick the writable fields only: n8n rejects additional properties (and 1.x rejects 2.x ones).
  const out: N8nWorkflowInput = {
    name: body.name,
    nodes: body.nodes,
    connections: body.connections,
    settings: body.settings
  }
  if (body.staticData !== undefined) out.staticData = body.staticData
  return JSON.stringify(out)
}
