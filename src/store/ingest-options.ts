// The jsonb options of the ingest SQL functions, declared once: the keys here are exactly the keys
// the functions read (`p_options ->> 'x'`), so a key the SQL ignores cannot be passed and a key the
// SQL reads cannot go undeclared. test/db/ingest-options.test.ts reads the functions' bodies from
// pg_proc and fails when the two drift; the key lists below are checked against their types.
// Meanings: supabase/migrations/20250109000000_sync_engine.sql (above each function).

/** ingest_executions (and ingest_user_executions, ingest_executions_batch, which pass them on). */
export interface IngestOptions {
  /** This page ends a pass that read everything above the stored stop point. */
  complete?: boolean
  /** With complete: n8n had assigned this id before the pass's running list was read. */
  ceiling?: string
  /** With complete, for n8n without a running list: stay below executions started after this. */
  started_before?: string
  /** With complete: false = keep the stored stop point unless something changed. */
  advance?: boolean
  /** With complete: the list's page size, to cost holding the stop point below open rows. */
  page_size?: number
  /** With complete: how many of the newest ledger rows that costing considers. */
  scan?: number
  /** With complete: false = never hold the stop point below open rows (re-check them by id). */
  hold?: boolean
  /** Open executions n8n answered 404 for: stop re-checking them. */
  vanished?: string[]
  /** With complete: how many open rows at or below the stop point to return for re-checking. */
  recheck_limit?: number
}

/** ingest_scan_batch's p_options (for the whole batch). */
export interface ScanBatchOptions {
  ceiling: string
  started_before?: string
  recheck_limit?: number
}

// Each list is checked against its type both ways: a key missing from a list, or a list entry
// that is not a key of the type, fails `npm run typecheck`.
type Exactly<T, K extends readonly string[]> = [Exclude<keyof T, K[number]>, Exclude<K[number], keyof T>] extends [never, never] ? K : never

const ingestKeys = ['complete', 'ceiling', 'started_before', 'advance', 'page_size', 'scan', 'hold', 'vanished', 'recheck_limit'] as const
const scanBatchKeys = ['ceiling', 'started_before', 'recheck_limit'] as const

export const INGEST_OPTION_KEYS: Exactly<IngestOptions, typeof ingestKeys> = ingestKeys
export const SCAN_BATCH_OPTION_KEYS: Exactly<ScanBatchOptions, typeof scanBatchKeys> = scanBatchKeys
