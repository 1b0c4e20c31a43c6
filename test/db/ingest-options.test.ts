// The ingest functions' jsonb options and their TypeScript declaration cannot drift: the keys each
// function body reads (`v_opts ->> 'x'`, `p_options -> 'x'`), taken from pg_proc as migrated, are
// exactly the keys declared in src/store/ingest-options.ts.
import t from 'tap'
import { INGEST_OPTION_KEYS, SCAN_BATCH_OPTION_KEYS } from '../../src/store/ingest-options.ts'
import { createTestDatabase } from '../helpers/db.ts'

/** The keys a plpgsql body reads from its options variable(s). */
function optionKeysRead (body: string, variables: string[]): string[] {
  const re = new RegExp(`\\b(?:${variables.join('|')})\\s*->>?\\s*'([a-z_]+)'`, 'g')
  return [...new Set([...body.matchAll(re)].map((m) => m[1]!))].sort()
}

t.test('optionKeysRead finds ->> and -> reads of the named variables only', async (t) => {
  t.same(optionKeysRead("(v_opts ->> 'a')::int, v_opts->'b', jsonb_typeof(v_opts -> 'a'), e ->> 'id'", ['v_opts']), ['a', 'b'])
})

t.test('the options the ingest SQL functions read are the ones TypeScript declares', async (t) => {
  const tdb = await createTestDatabase('ws_ingest_opts')
  t.teardown(() => tdb.drop())
  const body = async (sig: string): Promise<string> => {
    const r = await tdb.db.query<{ src: string }>('select prosrc as src from pg_proc where oid = $1::regprocedure', [sig])
    return r.rows[0]?.src ?? ''
  }
  const ingest = await body('public.ingest_executions(uuid, jsonb, timestamptz, jsonb)')
  t.same(optionKeysRead(ingest, ['v_opts', 'p_options']), [...INGEST_OPTION_KEYS].sort(),
    'ingest_executions reads exactly IngestOptions\' keys (a key read but undeclared, or declared but never read, fails here)')
  const scan = await body('public.ingest_scan_batch(jsonb, timestamptz, jsonb)')
  t.same(optionKeysRead(scan, ['p_options']), [...SCAN_BATCH_OPTION_KEYS].sort(),
    'ingest_scan_batch reads exactly ScanBatchOptions\' keys')
  // The wrappers pass the options on untouched (they read none themselves).
  for (const sig of ['public.ingest_user_executions(uuid, uuid, jsonb, timestamptz, jsonb)', 'public.ingest_executions_batch(jsonb, timestamptz)']) {
    const src = await body(sig)
    t.match(src, /public\.ingest_executions\(/, `${sig} calls ingest_executions`)
    t.same(optionKeysRead(src, ['p_options', 'v_opts']), [], `${sig} reads no option itself`)
  }
})
