// The ledger's rollup (20250117000000_execution_stats.sql, made cheaper by 20250118000001_rollup_cost.sql)
// stays what a recount of the ledger gives: after inserts, upserts that only insert or only update,
// updates that finish runs or move them to other buckets, over many workflows in one statement,
// every rollup row equals the one the released migration's recount (its numeric formula, its
// hist_rank) computes from the ledger as it is — bins at the exact 1.1^k boundaries included.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { MIGRATIONS_DIR } from '../../src/db/migrate.ts'
import { createTestDatabase } from '../helpers/db.ts'

const U = '11111111-1111-4111-8111-111111111111'

t.test('the rollup equals a recount of the ledger', async (t) => {
  const tdb = await createTestDatabase('ws_rollup')
  t.teardown(() => tdb.drop())
  const db = tdb.db
  const sql = await readFile(`${MIGRATIONS_DIR}20250117000000_execution_stats.sql`, 'utf8')
  const a = sql.indexOf('-- The ledger as it is now')
  const b = sql.indexOf('on conflict do nothing;', a)
  t.ok(a > 0 && b > a, 'the released recount is found')
  const recount = sql.slice(a, b).replace('insert into public.workflow_execution_rollups', 'insert into expected')

  async function compare (label: string): Promise<void> {
    await db.query('drop table if exists expected')
    await db.query('create table expected (like public.workflow_execution_rollups)')
    await db.query(recount)
    // Buckets the ledger left (rows moved elsewhere) stay in the rollup at zero; a recount has none.
    const nonZero = `(n_success <> 0 or n_error <> 0 or n_crashed <> 0 or n_canceled <> 0 or n_waiting <> 0 or n_running <> 0
                      or n_new <> 0 or n_unknown <> 0 or duration_count <> 0)`
    const cols = 'workflow_id, user_id, granularity, bucket_start, n_success, n_error, n_crashed, n_canceled, n_waiting, n_running, n_new, n_unknown, duration_count, round(duration_sum_ms::numeric, 3) as sum_ms, duration_hist, p50_bin, p95_bin'
    const diff = await db.query<{ side: string }>(
      `(select 'rollup only' as side, ${cols} from public.workflow_execution_rollups where ${nonZero}
        except select 'rollup only', ${cols} from expected)
       union all
       (select 'recount only', ${cols} from expected
        except select 'recount only', ${cols} from public.workflow_execution_rollups where ${nonZero})`)
    const n = await db.query<{ n: number }>('select count(*)::int as n from expected')
    t.ok((n.rows[0]?.n ?? 0) > 0, `${label}: the recount has rows (${n.rows[0]?.n})`)
    t.same(diff.rows, [], `${label}: every rollup row equals the recount`)
  }

  const wfs = await db.query<{ id: string }>(
    `insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id)
     select $1, 'flow ' || g, 'deployed', 'n8n-' || g from generate_series(1, 40) g returning id`, [U])
  const ids = wfs.rows.map((r) => r.id)
  t.equal(ids.length, 40)

  // Many workflows in one statement; durations over the whole range, the exact bin boundaries
  // (1.1^k - 1 ms, to the microsecond, and a microsecond below), no duration, a negative one.
  await db.query(
    `insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status, finished, started_at, stopped_at)
     select w.id, $2, 'e' || w.i || '-' || k, 'n8n', (array['success', 'error', 'crashed', 'canceled', 'running', 'waiting', 'new', 'odd'])[1 + (k % 8)], true,
            s.t, case when k % 8 in (4, 5) then null
                      when k % 37 = 0 then s.t - interval '1 second'
                      when k % 5 = 0 then s.t + make_interval(secs => round((power(1.1::numeric, k % 200) - 1) / 1000, 6))
                      when k % 5 = 1 then s.t + make_interval(secs => round((power(1.1::numeric, k % 200) - 1) / 1000, 6) - 0.000001)
                      else s.t + make_interval(secs => (k * 7919 % 1000000) / 1000.0) end
       from unnest($1::uuid[]) with ordinality as w(id, i), generate_series(1, 60) k,
            lateral (select timestamptz '2025-03-01' + make_interval(mins => (w.i * 131 + k * 47)::integer % 7200) as t) s`, [ids, U])
  await compare('after one multi-workflow insert')

  // An upsert that only inserts, then one that only updates (both statement triggers fire each time).
  const upsert = `insert into public.workflow_executions as x (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status, finished, started_at, stopped_at)
     select w, $2, 'u' || k, 'n8n', 'running', false, timestamptz '2025-03-02' + make_interval(mins => k * 13), null
       from unnest($1::uuid[]) w, generate_series(1, 5) k
     on conflict (workflow_id, n8n_execution_id) do update
        set status = 'success', finished = true, stopped_at = x.started_at + make_interval(secs => length(x.n8n_execution_id) * 1.5)`
  await db.query(upsert, [ids.slice(0, 20), U])
  await compare('after an upsert that only inserted')
  await db.query(upsert, [ids.slice(0, 20), U])
  await compare('after an upsert that only updated')

  // Runs finishing, and rows moving to other buckets (started_at changes), in one update.
  await db.query('update public.workflow_executions set status = \'success\', stopped_at = started_at + interval \'2.5 seconds\' where status in (\'running\', \'waiting\')')
  await db.query('update public.workflow_executions set started_at = started_at + interval \'3 hours\', stopped_at = stopped_at + interval \'3 hours 5 ms\' where n8n_execution_id like \'%-3_\'')
  await compare('after finishing runs and moving rows between buckets')
  // Through the ingest function, as the engine writes.
  const r = await db.asService((tx) => tx.query<{ r: { inserted: number } }>(
    'select public.ingest_executions($1::uuid, $2::jsonb, now(), \'{}\'::jsonb) as r',
    [ids[0], JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ id: String(1000 + i), status: i % 3 ? 'success' : 'error', startedAt: `2025-03-03T0${i % 10}:00:00Z`, stoppedAt: `2025-03-03T0${i % 10}:00:0${i % 10}.${i}Z` })))]))
  t.equal(r.rows[0]?.r.inserted, 30)
  await compare('after ingest_executions')
})
