// n8n execution ids and lists as the stop rules need them (README.md, "THE STOP POINT"): ids are
// decimal bigints from one instance-wide sequence, lists come newest first. Anything else is
// refused rather than risk missing runs. Shared by the engine and the live tail.
import { AppError } from '../errors.ts'
import type { ExecutionInput } from '../store/store.ts'
import type { N8nExecution } from '../services/n8n-client.ts'

/** n8n's largest page. */
export const PAGE = 250
/** Statuses that never change again. */
export const FINAL = new Set(['success', 'error', 'crashed', 'canceled'])
const ID_RE = /^[0-9]{1,18}$/

export function isExecutionId (id: string): boolean {
  return ID_RE.test(id)
}

export function n8nShapeError (message: string): AppError {
  return new AppError('n8n_error', message)
}

/** The id as a bigint; throws (n8n_error) when it is not numeric. */
export function executionId (id: string): bigint {
  if (!ID_RE.test(id)) throw n8nShapeError('n8n returned an execution id that is not numeric')
  return BigInt(id)
}

/**
 * A newest-first read of a list: each id must be numeric and below the previous one. The stop
 * rules rely on that order, so anything else throws (n8n_error).
 */
export class NewestFirst {
  #last: bigint | null = null

  /** The lowest id read so far (the last one); null before the first. */
  get last (): bigint | null {
    return this.#last
  }

  /** The next id of the list, checked. */
  next (id: string): bigint {
    const v = executionId(id)
    if (this.#last !== null && v >= this.#last) throw n8nShapeError('n8n returned executions out of order')
    this.#last = v
    return v
  }
}

/** The fields of an n8n execution the ledger keeps. */
export function toInput (e: N8nExecution): ExecutionInput {
  return {
    id: e.id,
    status: e.status,
    mode: e.mode,
    finished: e.finished,
    startedAt: e.startedAt,
    stoppedAt: e.stoppedAt,
    workflowId: e.workflowId
  }
}
