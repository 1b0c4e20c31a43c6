// The Store contract on Supabase: the SupabaseStore (supabase-js) against the PostgREST emulation,
// whose every answer a real Postgres computes by running the request as the caller (RLS) - the
// SQL functions called with rpc here are the ones the Postgres runs prove.
import t from 'tap'
import nock from 'nock'
import { SupabaseStore } from '../../src/store/supabase-store.ts'
import { readMigrations } from '../../src/db/migrate.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { startPostgrestEmulator } from '../helpers/postgrest-emulator.ts'
import { storeContract } from './store-contract.ts'

nock.disableNetConnect()
t.teardown(() => {
  nock.cleanAll()
  nock.enableNetConnect()
})

storeContract(t, 'Supabase (supabase-js → PostgREST emulation → Postgres)', async () => {
  const tdb = await createTestDatabase('ws_sbstore')
  const emu = await startPostgrestEmulator(tdb.url)
  const store = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey, serviceRoleKey: emu.serviceKey, lease: { pollMinMs: 10, pollMaxMs: 50 } })
  return {
    store,
    db: tdb.db,
    async close () {
      await store.close()
      await emu.stop()
      await tdb.drop()
    }
  }
})

// ---- Supabase-specific: the wire format, per-request clients, errors, leases, the boot check ----

import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { decodeJwt } from 'jose'
import { AppError } from '../../src/errors.ts'
import { SupabaseError } from '../../src/db/errors.ts'
import { serviceScope, userScope } from '../../src/store/scope.ts'
import type { RecordedRequest } from '../helpers/postgrest-emulator.ts'
import { mintUserToken, nowSeconds, tamperSignature } from '../helpers/tokens.ts'
import { newUserScope } from './store-contract.ts'

const tdb = await createTestDatabase('ws_sbwire')
const emu = await startPostgrestEmulator(tdb.url)
t.teardown(async () => {
  await emu.stop()
  await tdb.drop()
})
const store = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey, serviceRoleKey: emu.serviceKey, lease: { pollMinMs: 10, pollMaxMs: 50 } })

function since (n: number): RecordedRequest[] {
  return emu.requests.slice(n)
}

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    return err instanceof AppError ? err.code : err instanceof SupabaseError ? `SupabaseError:${err.code}` : `other:${(err as Error).message}`
  }
}

const input = (name: string) => ({ name, description: null, nodes: [], connections: {}, settings: {} })

t.test('requests follow PostgREST\'s format: paths, apikey + Authorization, rpc bodies, filters, Prefer, Accept', async (t) => {
  const a = await newUserScope()
  const token = a.scope.kind === 'user' ? a.scope.accessToken : ''
  const n = emu.requests.length
  const c = await store.createWorkflow(a.scope, input('wire'), { key: 'k-wire', requestHash: 'h', ttlHours: 24 })
  if (c.outcome !== 'created') throw new Error('not created')
  const id = c.workflow.id
  await store.getWorkflow(a.scope, id)
  await store.listWorkflows(a.scope, { limit: 2, after: { createdAt: '2030-01-01T00:00:00.123456Z', id: randomUUID() } })
  await store.deleteWorkflow(a.scope, id)
  await store.listSyncTargets(serviceScope)
  const [rpc, get, list, del, svc] = since(n)
  // reads (and the user's own delete) carry the caller's token; what the service records, its key
  for (const r of [get, list, del]) {
    t.equal(r?.apikey, emu.anonKey, `${r?.method} ${r?.path}: apikey is the anon key`)
    t.equal(r?.authorization, `Bearer ${token}`, `${r?.method} ${r?.path}: the caller's own token`)
    t.equal(r?.role, 'authenticated')
    t.equal(r?.sub, a.id)
  }
  t.match(rpc, { method: 'POST', path: '/rest/v1/rpc/create_workflow', status: 200, apikey: emu.serviceKey, authorization: `Bearer ${emu.serviceKey}`, role: 'service_role' },
    'the write goes with the service-role key')
  t.match(String(rpc?.contentType), /^application\/json/)
  t.same(rpc?.body, { p_user_id: a.id, p_name: 'wire', p_description: null, p_nodes: [], p_connections: {}, p_settings: {}, p_idempotency_key: 'k-wire', p_request_hash: 'h', p_ttl_hours: 24 }, 'named arguments as a JSON object')
  t.match(get, { method: 'GET', path: '/rest/v1/mvp_workflows', accept: 'application/vnd.pgrst.object+json', status: 200 })
  t.same(get?.params.filter(([k]) => k !== 'select'), [['id', `eq.${id}`], ['user_id', `eq.${a.id}`]], 'filters id=eq.<uuid>, user_id=eq.<uuid>')
  t.match(list?.params, [['select', /^id,user_id,name,/], ['user_id', `eq.${a.id}`], ['or', /^\(created_at\.lt\."2030-01-01T00:00:00\.123456Z",and\(created_at\.eq\."2030-01-01T00:00:00\.123456Z",id\.lt\.[0-9a-f-]{36}\)\)$/], ['order', 'created_at.desc,id.desc'], ['limit', '2']])
  t.match(del, { method: 'DELETE', path: '/rest/v1/mvp_workflows', prefer: 'return=representation', status: 200 })
  t.same(del?.params, [['id', `eq.${id}`], ['user_id', `eq.${a.id}`], ['select', 'id']])
  t.match(svc, { method: 'POST', path: '/rest/v1/rpc/list_sync_targets', apikey: emu.serviceKey, authorization: `Bearer ${emu.serviceKey}`, role: 'service_role' }, 'the service scope uses the service-role key')
  t.same(svc?.body, { p_workflow_ids: null, p_after_user: null, p_after_id: null, p_limit: 1000 }, 'keyset pages under max_rows')
})

t.test('the per-request client never carries another request\'s token (concurrent users)', async (t) => {
  emu.setJitter(15)
  t.teardown(() => { emu.setJitter(0) })
  const a = await newUserScope()
  const b = await newUserScope()
  const users = new Map([[a.id, a], [b.id, b]])
  const n = emu.requests.length
  const made = store.clientsCreated
  const work: Array<Promise<unknown>> = []
  for (let i = 0; i < 15; i++) {
    for (const u of [a, b]) {
      work.push((async () => {
        const c = await store.createWorkflow(u.scope, input(`${u.id}:${i}`))
        if (c.outcome !== 'created') throw new Error('not created')
        await store.getWorkflow(u.scope, c.workflow.id)
        await store.withLock(u.scope, { name: 'deploy', workflowId: c.workflow.id, ownerId: u.id }, async () => store.beginDeploy(u.scope, c.workflow.id))
        await store.listWorkflows(u.scope, { limit: 3 })
      })())
    }
  }
  await Promise.all(work)
  const reqs = since(n)
  t.ok(reqs.length >= 150, `${reqs.length} requests`)
  let checked = 0
  let recorded = 0
  for (const r of reqs) {
    const bearer = r.authorization?.replace(/^Bearer /, '') ?? ''
    // the request's own content names whose it is
    const body = r.body as Record<string, unknown> | null
    const owner = typeof body?.p_name === 'string'
      ? body.p_name.split(':')[0]
      : typeof body?.p_key === 'string'
        ? body.p_key.split(':')[1]
        : r.params.find(([k]) => k === 'user_id')?.[1].replace(/^eq\./, '')
    if (r.role === 'service_role') {
      // what the service records: its own key, acting for the user the content names
      recorded++
      if (bearer !== emu.serviceKey) t.fail(`${r.method} ${r.path}: a service request without the service key`)
      if (typeof body?.p_user_id === 'string' && owner !== undefined && body.p_user_id !== owner) t.fail(`${r.method} ${r.path} for ${owner} acted for ${body.p_user_id}`)
      if (typeof body?.p_user_id === 'string' && !users.has(body.p_user_id)) t.fail(`${r.method} ${r.path} acted for a stranger`)
      continue
    }
    const sub = decodeJwt(bearer).sub as string
    const u = users.get(sub)
    t.ok(u, 'every user request carries one of the two users\' tokens')
    if (!u) continue
    t.equal(bearer, u.scope.kind === 'user' ? u.scope.accessToken : '', 'exactly that user\'s token')
    if (owner) {
      checked++
      if (owner !== sub) t.fail(`${r.method} ${r.path} for ${owner} carried ${sub}'s token`)
    }
  }
  t.ok(checked >= 60, `${checked} user requests checked against their owner`)
  t.ok(recorded >= 90, `${recorded} service writes (create, lease, begin_deploy, release)`)
  t.ok(store.clientsCreated - made <= 3, 'one client per token, reused for that token only (and the service client, made once)')
  const rows = await tdb.db.query<{ user_id: string, name: string }>('select user_id, name from public.mvp_workflows where user_id = any($1::uuid[])', [[a.id, b.id]])
  t.equal(rows.rows.length, 30)
  t.ok(rows.rows.every((r) => r.name.startsWith(`${r.user_id}:`)), 'every row belongs to the user who created it')
})

t.test('client cache: keyed by the exact token, never past its exp, bounded', async (t) => {
  const small = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey, clientCacheSize: 2 })
  const id = randomUUID()
  const exp = nowSeconds() + 3600
  const t1 = await mintUserToken({ sub: id, exp })
  const t2 = await mintUserToken({ sub: id, exp: exp + 1 })
  const s1 = userScope({ sub: id, role: 'authenticated', exp }, t1)
  const s2 = userScope({ sub: id, role: 'authenticated', exp: exp + 1 }, t2)
  const c1 = small.clientFor(s1).client
  t.equal(small.clientFor(userScope({ sub: id, role: 'authenticated', exp }, t1)).client, c1, 'same token, same client')
  t.not(small.clientFor(s2).client, c1, 'same user, another token: another client')
  small.clientFor(userScope({ sub: randomUUID(), role: 'authenticated', exp }, await mintUserToken({ exp })))
  t.not(small.clientFor(s1).client, c1, 'evicted beyond the bound (2)')
  const old = userScope({ sub: id, role: 'authenticated', exp: nowSeconds() - 1 }, await mintUserToken({ sub: id, exp: nowSeconds() - 1 }))
  const o1 = small.clientFor(old).client
  t.not(small.clientFor(old).client, o1, 'an expired token\'s client is not kept')
  t.throws(() => small.clientFor(userScope({ sub: id, role: 'authenticated' })), /access token/, 'a user scope without its token is refused')
  t.equal(JSON.stringify(s1).includes(t1), false, 'the token is not serialised with the scope')
})

t.test('the service scope without SUPABASE_SERVICE_ROLE_KEY answers 503, without asking Supabase', async (t) => {
  const noService = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey })
  const n = emu.requests.length
  for (const p of [noService.listSyncTargets(serviceScope), noService.purgeExpiredData(serviceScope, 1, 1, true), noService.withLock(serviceScope, { name: 'cleanup' }, async () => 1)]) {
    try {
      await p
      t.fail('resolved')
    } catch (err) {
      t.equal((err as AppError).code, 'database_unavailable')
      t.equal((err as AppError).status, 503)
      t.match((err as Error).message, /SUPABASE_SERVICE_ROLE_KEY/)
    }
  }
  t.equal(emu.requests.length, n, 'nothing was sent')
  t.equal(noService.hasServiceRole, false)
})

t.test('errors map to the contract\'s problems; no key or token in them', async (t: Test) => {
  const a = await newUserScope()
  const b = await newUserScope()
  const c = await store.createWorkflow(a.scope, input('errors'))
  if (c.outcome !== 'created') throw new Error('not created')
  const id = c.workflow.id
  const caught: unknown[] = []
  const grab = async (p: Promise<unknown>): Promise<string> => {
    try { await p; return 'resolved' } catch (err) { caught.push(err); return err instanceof AppError ? err.code : err instanceof SupabaseError ? `SupabaseError:${err.code}` : 'other' }
  }
  emu.inject({ kind: 'network' }, (m, p) => m === 'POST' && p === '/rest/v1/rpc/begin_deploy')
  t.equal(await grab(store.beginDeploy(a.scope, id)), 'database_unavailable', 'network failure → 503')
  emu.inject({ kind: 'status', status: 503, body: { message: 'upstream down' } }, (m, p) => m === 'POST' && p.endsWith('/set_workflow_active'))
  t.equal(await grab(store.setWorkflowActive(a.scope, id, true)), 'database_unavailable', 'gateway 503 → 503')
  emu.inject({ kind: 'status', status: 500, body: { code: 'PGRST000', message: 'Could not connect with the database', details: null, hint: null } }, (m, p) => p.endsWith('/record_deploy_outcome'))
  t.equal(await grab(store.recordDeployOutcome(a.scope, id, { status: 'deployed', lastError: null })), 'database_unavailable', 'PGRST000 → 503')
  emu.inject({ kind: 'status', status: 500, body: { code: 'XX000', message: 'internal boom', details: null, hint: null } }, (m, p) => p.endsWith('/begin_deploy'))
  t.equal(await grab(store.beginDeploy(a.scope, id)), 'SupabaseError:XX000', 'anything else stays unexpected (500, logged)')
  t.equal(await grab(store.updateWorkflowDefinition(a.scope, id, { name: 'x' }, 99)), 'precondition_failed', 'P0001 + hint → 412')
  t.equal(await grab(store.createWorkflow(a.scope, input('dup'), { key: 'k', requestHash: '1', ttlHours: 1 })), 'resolved')
  t.equal(await grab(store.createWorkflow(a.scope, input('dup'), { key: 'k', requestHash: '2', ttlHours: 1 })), 'conflict', 'P0001 conflict → 409')
  t.equal(await grab(store.withLock(a.scope, { name: 'deploy', workflowId: id, ownerId: b.id }, async () => 1)), 'forbidden', 'another user\'s lease → 403')
  t.equal(await grab(store.purgeExpiredData(a.scope, 1, 1, true)), 'forbidden', 'no EXECUTE grant (42501) → 403')
  const expiredExp = nowSeconds() - 10
  const expiredToken = await mintUserToken({ sub: a.id, exp: expiredExp })
  t.equal(await grab(store.getWorkflow(userScope({ sub: a.id, role: 'authenticated', exp: nowSeconds() + 60 }, expiredToken), id)), 'token_expired', 'PostgREST 401 JWT expired → token_expired')
  const forged = tamperSignature(await mintUserToken({ sub: a.id }))
  t.equal(await grab(store.listWorkflows(userScope({ sub: a.id, role: 'authenticated', exp: nowSeconds() + 60 }, forged), { limit: 1 })), 'invalid_token', '401 bad signature → invalid_token')
  const badService = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey, serviceRoleKey: 'not-the-key' })
  t.equal(await grab(badService.listSyncTargets(serviceScope)), 'database_unavailable', 'a refused service key is this service\'s problem (503), not the caller\'s')
  emu.inject({ kind: 'status', status: 404, body: { code: 'PGRST202', message: 'Could not find the function public.begin_deploy(p_workflow_id) in the schema cache', details: null, hint: null } }, (m, p) => p.endsWith('/begin_deploy'))
  const schema = caught.length
  t.equal(await grab(store.beginDeploy(a.scope, id)), 'database_unavailable', 'a missing function → 503')
  t.match((caught[schema] as Error).message, /supabase db push/)
  const text = caught.map((e) => `${(e as Error).message} ${JSON.stringify(e)} ${String((e as { cause?: unknown }).cause ?? '')}`).join('\n')
  for (const secret of [emu.anonKey, emu.serviceKey, expiredToken, forged, a.scope.kind === 'user' ? a.scope.accessToken ?? '' : '']) {
    t.notOk(text.includes(secret), 'no key or token in any error')
  }
})

t.test('lease locks: renewed while held, taken over after a holder died, bounded waits', async (t) => {
  const fast = new SupabaseStore({ url: emu.url, anonKey: emu.anonKey, serviceRoleKey: emu.serviceKey, lease: { ttlSeconds: 1, pollMinMs: 20, pollMaxMs: 100 } })
  const a = await newUserScope()
  const lock = { name: 'sync_user' as const, ownerId: a.id }
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let entered!: () => void
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const holder = fast.withLock(a.scope, lock, async () => { entered(); await held; return 'held' })
  await inside
  const attempts: boolean[] = []
  const until = Date.now() + 2500
  while (Date.now() < until) {
    attempts.push((await fast.withLock(a.scope, lock, async () => true, { wait: false })).acquired)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(attempts.length > 10 && attempts.every((x) => !x), 'held for 2.5 s on a 1 s lease: the renewal kept it')
  release()
  t.same(await holder, { acquired: true, value: 'held' })
  const row = await tdb.db.query('select 1 from public.workflow_sync_locks where key = $1', [`user:${a.id}:sync`])
  t.equal(row.rows.length, 0, 'released: the lease row is gone')

  // A holder that died: its lease runs out, then the lock is free.
  await tdb.db.query("insert into public.workflow_sync_locks (key, holder, expires_at) values ('service:cleanup', 'dead-replica', clock_timestamp() + interval '700 milliseconds')")
  t.same(await fast.withLock(serviceScope, { name: 'cleanup' }, async () => 1, { wait: false }), { acquired: false }, 'a live lease is respected')
  const started = Date.now()
  t.same(await fast.withLock(serviceScope, { name: 'cleanup' }, async () => 'taken over'), { acquired: true, value: 'taken over' })
  t.ok(Date.now() - started >= 300, 'after the dead holder\'s lease ran out')

  await tdb.db.query("insert into public.workflow_sync_locks (key, holder, expires_at) values ('service:sync_all', 'busy-replica', clock_timestamp() + interval '1 minute')")
  t.equal(await code(fast.withLock(serviceScope, { name: 'sync_all' }, async () => 1, { timeoutMs: 200 })), 'conflict', 'a wait that runs out is a 409')
})

t.test('checkSchema: the boot check and its messages', async (t) => {
  // the newest migration file (every migration redefines workflow_sync_schema_version)
  const expected = (await readMigrations()).at(-1)!.version
  t.equal(await store.checkSchema(expected), expected, 'the schema is there')
  t.equal(await store.ping(), true)
  await t.rejects(store.checkSchema('20991231000000'), new RegExp(`schema is at ${expected} but this service needs 20991231000000: run \`supabase db push\``))
  emu.inject({ kind: 'network' }, (_m, p) => p.endsWith('/workflow_sync_schema_version'))
  await t.rejects(store.checkSchema(expected), /is unreachable/)
  const wrongKey = new SupabaseStore({ url: emu.url, anonKey: 'wrong' })
  await t.rejects(wrongKey.checkSchema(expected), /refused SUPABASE_ANON_KEY/)
  t.equal(await wrongKey.ping(), false)

  const empty = await createTestDatabase('ws_sbempty')
  t.teardown(() => empty.drop())
  await empty.db.query('drop function if exists public.workflow_sync_schema_version()')
  const bare = await startPostgrestEmulator(empty.url)
  t.teardown(() => bare.stop())
  const bareStore = new SupabaseStore({ url: bare.url, anonKey: bare.anonKey })
  await t.rejects(bareStore.checkSchema(expected), /has no workflow-sync schema\. This service cannot apply migrations without a database password: run `supabase link --project-ref <ref>` then `supabase db push`/)
})
