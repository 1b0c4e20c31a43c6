// The direct-access matrix: what a signed-in user's token (and the anon key) can do through
// Supabase's Data API, around this service. Every statement runs as PostgREST runs a request:
// one transaction, `set local role authenticated|anon`, `request.jwt.claims` set with
// set_config(…, true). The tables, columns and functions under test are ENUMERATED FROM THE
// CATALOG (so a new one is covered without editing this file), and every enumerated list is
// asserted non-empty where it must not be. Each probe rolls back: the matrix leaves no trace.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'

/** The columns a user authors (README: Security model). */
export const AUTHORED_COLUMNS = ['name', 'description', 'nodes', 'connections', 'settings', 'active'] as const

interface Outcome { ok: boolean, code: string | null, rows: Array<Record<string, unknown>>, rowCount: number }

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`

export async function directAccessMatrix (t: Test, connectionString: string, label: string): Promise<void> {
  const c = new pg.Client({ connectionString })
  await c.connect()
  t.teardown(() => c.end())

  /** One Data API request: as `role` with `claims`, rolled back afterwards. */
  async function as (role: 'authenticated' | 'anon', sub: string | null, sql: string, params: unknown[] = []): Promise<Outcome> {
    await c.query('begin')
    try {
      await c.query(`set local role ${role}`)
      await c.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(sub === null ? { role } : { role, sub, aud: 'authenticated' })])
      const r = await c.query(sql, params)
      return { ok: true, code: null, rows: r.rows as Array<Record<string, unknown>>, rowCount: r.rowCount ?? 0 }
    } catch (err) {
      return { ok: false, code: (err as { code?: string }).code ?? 'unknown', rows: [], rowCount: 0 }
    } finally {
      await c.query('rollback')
    }
  }
  const user = (sub: string, sql: string, params?: unknown[]): Promise<Outcome> => as('authenticated', sub, sql, params)
  const anon = (sql: string, params?: unknown[]): Promise<Outcome> => as('anon', null, sql, params)
  const refused = (t: Test, o: Outcome, msg: string): void => { t.equal(o.code, '42501', `${msg}: refused (${o.code ?? `accepted, ${o.rowCount} rows`})`) }

  // ---- data: two users, a row each with bookkeeping, as the owner (the service's migrations' role)
  const A = randomUUID()
  const B = randomUUID()
  const hasAuthUsers = (await c.query<{ t: string | null }>("select to_regclass('auth.users')::text as t")).rows[0]?.t !== null
  if (hasAuthUsers) {
    await c.query("insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $3), ($2, 'authenticated', 'authenticated', $4)",
      [A, B, `${A.slice(0, 8)}@example.test`, `${B.slice(0, 8)}@example.test`])
  }
  const seed = async (u: string): Promise<string> => {
    const n8n = `n8n-${randomUUID().slice(0, 8)}`
    const w = (await c.query<{ id: string }>(
      "insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id, execution_count, execution_floor_id) values ($1, 'seed', 'deployed', $2, 3, 10) returning id", [u, n8n])).rows[0]!.id
    await c.query("insert into public.workflow_executions (workflow_id, user_id, n8n_execution_id, n8n_workflow_id, status) values ($1, $2, '1', $3, 'success')", [w, u, n8n])
    await c.query("insert into public.sync_logs (user_id, sync_type, status) values ($1, 'user', 'success')", [u])
    await c.query("insert into public.idempotency_keys (user_id, key, request_hash, expires_at) values ($1, 'k', 'h', now() + interval '1 hour')", [u])
    await c.query('insert into public.workflow_scan_floors (workflow_id, floor_id) values ($1, 20)', [w])
    await c.query("insert into public.workflow_sync_locks (key, holder, expires_at) values ($1, 'h', now() + interval '1 minute')", [`user:${u}:sync`])
    return w
  }
  const wa = await seed(A)
  const wb = await seed(B)
  t.teardown(async () => {
    await c.query('delete from public.workflow_sync_locks where key = any($1)', [[`user:${A}:sync`, `user:${B}:sync`]]).catch(() => {})
    await c.query('delete from public.mvp_workflows where user_id = any($1::uuid[])', [[A, B]]).catch(() => {})
    if (hasAuthUsers) await c.query('delete from auth.users where id = any($1::uuid[])', [[A, B]]).catch(() => {})
  })

  const columns = (await c.query<{ column_name: string }>(
    "select column_name from information_schema.columns where table_schema = 'public' and table_name = 'mvp_workflows' order by ordinal_position")).rows.map((r) => r.column_name)
  const systemColumns = columns.filter((col) => !(AUTHORED_COLUMNS as readonly string[]).includes(col))
  const tables = (await c.query<{ name: string }>(
    "select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1")).rows.map((r) => r.name)
  const others = tables.filter((x) => x !== 'mvp_workflows')

  t.test(`${label}: the catalog lists what the matrix covers`, async (t) => {
    t.ok(AUTHORED_COLUMNS.every((col) => columns.includes(col)), 'every authored column exists')
    for (const col of ['id', 'user_id', 'status', 'n8n_workflow_id', 'execution_count', 'successful_executions', 'failed_executions',
      'last_execution_at', 'last_execution_status', 'last_sync_at', 'last_error', 'version', 'deploy_attempts', 'execution_floor_id',
      'last_seen_execution_id', 'created_at', 'updated_at']) {
      t.ok(systemColumns.includes(col), `system column ${col} is under test`)
    }
    for (const name of ['workflow_executions', 'sync_logs', 'idempotency_keys', 'workflow_scan_floors', 'workflow_events', 'workflow_events_purged', 'workflow_sync_locks']) {
      t.ok(others.includes(name), `table ${name} is under test`)
    }
  })

  t.test(`${label}: own mvp_workflows row — authored fields yes, everything else no`, async (t) => {
    for (const col of systemColumns) {
      refused(t, await user(A, `update public.mvp_workflows set ${ident(col)} = ${ident(col)} where id = $1`, [wa]), `update own row's ${col}`)
    }
    for (const col of systemColumns.filter((x) => x !== 'user_id')) {
      // the column's own (valid) value, copied from the user's row: only the privilege can refuse it
      refused(t, await user(A, `insert into public.mvp_workflows (user_id, name, ${ident(col)}) select user_id, 'sys', ${ident(col)} from public.mvp_workflows where id = $1`, [wa]),
        `insert setting ${col}`)
    }
    const upd = await user(A, "update public.mvp_workflows set name = 'mine', description = 'd', nodes = '[]', connections = '{}', settings = '{}', active = true where id = $1 returning version, status", [wa])
    t.match(upd, { ok: true, rowCount: 1 }, 'the authored fields of one\'s own row: updated')
    t.match(upd.rows[0], { version: 2, status: 'pending' }, 'a direct edit moves the version on and leaves the row for the next sync to deploy')
    t.match(await user(A, "update public.mvp_workflows set name = 'theirs' where id = $1", [wb]), { ok: true, rowCount: 0 }, 'another user\'s row: not found (RLS)')
    const ins = await user(A, `insert into public.mvp_workflows (user_id, name, description, nodes, connections, settings, active)
      values ($1, 'front end', null, '[{"name":"Webhook","type":"n8n-nodes-base.webhook"}]', '{}', '{}', true)
      returning status, n8n_workflow_id, execution_count, successful_executions, failed_executions, version, deploy_attempts`, [A])
    t.match(ins, { ok: true, rowCount: 1 }, 'an insert of the authored fields: accepted')
    t.same(ins.rows[0], { status: 'pending', n8n_workflow_id: null, execution_count: 0, successful_executions: 0, failed_executions: 0, version: 1, deploy_attempts: 0 }, 'the defaults fill the rest')
    t.match(await user(A, "insert into public.mvp_workflows (name) values ('no owner')"), { ok: false }, 'without user_id: refused (the policy pins it to the caller)')
    refused(t, await user(A, "insert into public.mvp_workflows (user_id, name) values ($1, 'for B')", [B]), 'an insert for another user')
    t.match(await user(A, 'delete from public.mvp_workflows where id = $1', [wa]), { ok: true, rowCount: 1 }, 'delete one\'s own row')
    t.match(await user(A, 'delete from public.mvp_workflows where id = $1', [wb]), { ok: true, rowCount: 0 }, 'another user\'s row: not found (RLS)')
    refused(t, await user(A, 'truncate public.mvp_workflows'), 'truncate (which ignores RLS)')
    t.same((await user(A, 'select id from public.mvp_workflows where id = any($1::uuid[])', [[wa, wb]])).rows, [{ id: wa }], 'reads: one\'s own rows only')
  })

  t.test(`${label}: every other table — read own rows at most, never write`, async (t) => {
    t.ok(others.length >= 7, `${others.length} tables`)
    const tableColumns = async (name: string): Promise<Array<{ column_name: string, plain: boolean }>> => (await c.query<{ column_name: string, plain: boolean }>(
      `select column_name, is_identity = 'NO' and is_generated = 'NEVER' as plain
         from information_schema.columns where table_schema = 'public' and table_name = $1 order by ordinal_position`, [name])).rows
    for (const name of others) {
      const info = await tableColumns(name)
      const cols = info.map((x) => x.column_name)
      // a column an UPDATE may name at all (not an identity column): only the privilege can refuse it
      const first = info.find((x) => x.plain)!.column_name
      const T = `public.${ident(name)}`
      // own and foreign rows, by whatever names the owner
      const where = (u: string, w: string): [string, unknown[]] => cols.includes('user_id')
        ? ['user_id = $1', [u]]
        : cols.includes('workflow_id')
          ? ['workflow_id = $1', [w]]
          : cols.includes('key') ? ['key = $1', [`user:${u}:sync`]] : ['true', []]
      refused(t, await user(A, `insert into ${T} default values`), `${name}: insert`)
      for (const [who, u, w] of [['own', A, wa], ['foreign', B, wb]] as const) {
        const [cond, params] = where(u, w)
        if (cols.includes('user_id') || cols.includes('workflow_id')) {
          const col = cols.includes('user_id') ? 'user_id' : 'workflow_id'
          refused(t, await user(A, `insert into ${T} (${col}) values ($1)`, [col === 'user_id' ? u : w]), `${name}: insert with ${who} ${col}`)
        }
        refused(t, await user(A, `update ${T} set ${ident(first)} = ${ident(first)} where ${cond}`, params), `${name}: update ${who}`)
        refused(t, await user(A, `delete from ${T} where ${cond}`, params), `${name}: delete ${who}`)
      }
      refused(t, await user(A, `truncate ${T}`), `${name}: truncate`)
      refused(t, await anon(`select * from ${T}`), `${name}: anon select`)
      refused(t, await anon(`insert into ${T} default values`), `${name}: anon insert`)
    }
    for (const name of tables) {
      for (const role of ['anon', 'authenticated']) {
        const p = (await c.query<{ tr: boolean, rf: boolean, tc: boolean }>(
          "select has_table_privilege($1, $2, 'TRIGGER') as tr, has_table_privilege($1, $2, 'REFERENCES') as rf, has_table_privilege($1, $2, 'TRUNCATE') as tc",
          [role, `public.${name}`])).rows[0]
        t.same(p, { tr: false, rf: false, tc: false }, `${name}: no TRIGGER, REFERENCES or TRUNCATE for ${role}`)
      }
    }
    const reads = await user(A, 'select (select count(*) from public.workflow_executions)::int as e, (select count(*) from public.sync_logs)::int as l, (select count(*) from public.idempotency_keys)::int as k, (select count(*) from public.workflow_sync_locks where key like \'user:%\')::int as locks')
    t.equal(reads.ok, false, 'locks are not readable at all')
    const own = await user(A, 'select (select count(*) from public.workflow_executions where user_id = any($1::uuid[]))::int as e, (select count(*) from public.sync_logs where user_id = any($1::uuid[]))::int as l, (select count(*) from public.idempotency_keys where user_id = any($1::uuid[]))::int as k', [[A, B]])
    t.same(own.rows[0], { e: 1, l: 1, k: 1 }, 'the ledger, sync logs and idempotency records: one\'s own only')
  })

  t.test(`${label}: the runner's own schema is not reachable with a token`, async (t) => {
    const schemas = (await c.query<{ nspname: string }>("select nspname from pg_namespace where nspname = 'workflow_sync'")).rows
    t.equal(schemas.length, 1, 'the migration runner\'s schema exists')
    for (const role of ['anon', 'authenticated']) {
      const p = (await c.query<{ u: boolean }>("select has_schema_privilege($1, 'workflow_sync', 'USAGE') as u", [role])).rows[0]
      t.same(p, { u: false }, `no USAGE on workflow_sync for ${role}`)
    }
  })

  t.test(`${label}: sequences`, async (t) => {
    const seqs = (await c.query<{ name: string }>("select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'S' order by 1")).rows.map((r) => r.name)
    t.ok(seqs.length >= 2, `${seqs.length} sequences: ${seqs.join(', ')}`)
    for (const s of seqs) {
      for (const role of ['anon', 'authenticated']) {
        const p = (await c.query<{ u: boolean, s: boolean, up: boolean }>("select has_sequence_privilege($1, $2, 'USAGE') as u, has_sequence_privilege($1, $2, 'SELECT') as s, has_sequence_privilege($1, $2, 'UPDATE') as up", [role, s])).rows[0]
        t.same(p, { u: false, s: false, up: false }, `${s}: nothing for ${role}`)
      }
    }
  })

  t.test(`${label}: functions in public — only non-VOLATILE ones are executable by anon or authenticated`, async (t) => {
    const fns = (await c.query<{ sig: string, vol: string, auth: boolean, anon: boolean, trig: boolean, args: string[] }>(
      `select p.oid::regprocedure::text as sig, p.provolatile as vol, p.prorettype = 'trigger'::regtype as trig,
              has_function_privilege('authenticated', p.oid, 'execute') as auth, has_function_privilege('anon', p.oid, 'execute') as anon,
              array(select format_type(x, null) from unnest(p.proargtypes) x) as args
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' and p.prokind = 'f' order by 1`)).rows
    const publicExec = (await c.query<{ sig: string }>(
      `select p.oid::regprocedure::text as sig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.provolatile = 'v'
          and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a where a.grantee = 0 and a.privilege_type = 'EXECUTE')`)).rows
    t.same(publicExec, [], 'no VOLATILE function keeps PUBLIC\'s default EXECUTE')
    const forUsers = fns.filter((f) => f.auth)
    const forAnon = fns.filter((f) => f.anon)
    t.ok(fns.length >= 20, `${fns.length} functions in public`)
    t.ok(forUsers.length >= 4, `executable by authenticated: ${forUsers.map((f) => f.sig).join(', ')}`)
    for (const f of [...forUsers, ...forAnon]) t.not(f.vol, 'v', `${f.sig} is ${f.vol === 's' ? 'STABLE' : 'IMMUTABLE'}`)
    t.same(forAnon.map((f) => f.sig), ['workflow_sync_schema_version()'], 'anon: the schema version only')
    const volatile = fns.filter((f) => f.vol === 'v' && !f.trig)
    t.ok(volatile.length >= 15, `${volatile.length} VOLATILE functions, none callable`)
    for (const f of volatile) {
      const name = f.sig.slice(0, f.sig.indexOf('('))
      const call = `select public.${ident(name)}(${f.args.map((a) => `null::${a}`).join(', ')})`
      refused(t, await user(A, call), `${f.sig} as a user`)
      refused(t, await anon(call), `${f.sig} as anon`)
    }
    // the write functions' own names, so that dropping the enumeration would be seen
    for (const name of ['create_workflow', 'begin_deploy', 'record_deploy_outcome', 'update_workflow_definition', 'set_workflow_active', 'complete_idempotency_key',
      'ingest_executions', 'ingest_executions_batch', 'ingest_user_executions', 'mark_workflow_missing', 'record_sync_log', 'try_acquire_lock', 'renew_lock', 'release_lock']) {
      t.ok(volatile.some((f) => f.sig.startsWith(`${name}(`)), `${name} is among the refused`)
    }
    t.match(await user(A, 'select count(*)::int as n from public.list_sync_targets(null, null, null, 1000)'), { ok: true, rows: [{ n: 1 }] }, 'a STABLE read runs, under RLS (one\'s own workflow)')
  })
}
