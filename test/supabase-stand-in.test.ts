// The Supabase stand-in of the browser suite, driven by supabase-js itself over real HTTP and a
// real WebSocket (Node's): what the dashboard relies on, without a browser — the password and
// refresh grants and logout as auth-js expects them, Realtime's join/reply/changes as realtime-js
// expects them (both protocol versions), RLS on the changes, no replay after a drop.
import t from 'tap'
import pg from 'pg'
import { createClient } from '@supabase/supabase-js'
import type { RealtimeChannel, RealtimePostgresChangesPayload } from '@supabase/supabase-js'
import { createTestDatabase } from './helpers/db.ts'
import { startSupabaseStandIn } from './helpers/supabase-stand-in.ts'
import { randomUserId } from './helpers/tokens.ts'
import { waitFor } from '../test-e2e/n8n-harness.ts'

const tdb = await createTestDatabase('ws_standin')
const standIn = await startSupabaseStandIn(tdb.url)
const sql = new pg.Client({ connectionString: tdb.url })
await sql.connect()
t.teardown(async () => {
  await sql.end()
  await standIn.stop()
  await tdb.drop()
})
const password = 'a long enough password'
const alice = await standIn.auth.createUser({ email: 'Alice@Example.com', password })
const unconfirmed = await standIn.auth.createUser({ email: 'late@example.com', password, confirmed: false })
const client = () => createClient(standIn.url, standIn.anonKey, { auth: { persistSession: false, autoRefreshToken: false } })

t.test('Auth: password grant, refresh rotation, logout', async (t) => {
  const sb = client()
  t.equal((await sb.auth.signInWithPassword({ email: alice.email, password: 'wrong' })).error?.message, 'Invalid login credentials')
  t.equal((await sb.auth.signInWithPassword({ email: 'nobody@example.com', password })).error?.message, 'Invalid login credentials', 'an unknown email says the same')
  t.match((await sb.auth.signInWithPassword({ email: unconfirmed.email, password })).error, { code: 'email_not_confirmed' })
  const { data, error } = await sb.auth.signInWithPassword({ email: 'alice@example.com', password })
  t.equal(error, null, 'email matched case-insensitively')
  const s = data.session!
  t.match(s, { token_type: 'bearer', expires_in: 3600, user: { id: alice.id, email: alice.email, aud: 'authenticated', role: 'authenticated' } })
  t.ok(s.expires_at! > Date.now() / 1000 + 3500)
  const claims = JSON.parse(Buffer.from(s.access_token.split('.')[1]!, 'base64url').toString())
  t.match(claims, { iss: `${standIn.url}/auth/v1`, sub: alice.id, aud: 'authenticated', role: 'authenticated', email: alice.email, session_id: /^[0-9a-f-]{36}$/ })
  const refreshed = await sb.auth.refreshSession({ refresh_token: s.refresh_token })
  t.equal(refreshed.error, null)
  t.not(refreshed.data.session?.refresh_token, s.refresh_token, 'the refresh token rotates')
  t.match((await client().auth.refreshSession({ refresh_token: s.refresh_token })).error, { code: 'refresh_token_already_used' })
  const token = refreshed.data.session!.access_token
  t.equal((await sb.auth.getUser(token)).data.user?.id, alice.id)
  t.equal((await sb.auth.signOut()).error, null)
  const after = await fetch(`${standIn.url}/auth/v1/user`, { headers: { apikey: standIn.anonKey, authorization: `Bearer ${token}` } })
  t.equal(after.status, 403, 'the session is gone after logout')
  t.match((await client().auth.refreshSession({ refresh_token: refreshed.data.session!.refresh_token })).error, { code: 'refresh_token_not_found' })
  const noKey = await fetch(`${standIn.url}/auth/v1/token?grant_type=password`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: alice.email, password }) })
  t.equal(noKey.status, 401, 'the gateway wants an apikey')
  const preflight = await fetch(`${standIn.url}/auth/v1/token`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:1', 'access-control-request-headers': 'apikey,x-client-info' } })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-headers'), 'apikey,x-client-info', 'CORS preflight answered')
})

for (const vsn of ['2.0.0', '1.0.0']) {
  t.test(`Realtime (vsn ${vsn}): postgres_changes under RLS, access checked at join, no replay`, async (t) => {
    const sb = createClient(standIn.url, standIn.anonKey, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { vsn } })
    const { data } = await sb.auth.signInWithPassword({ email: alice.email, password })
    t.ok(data.session, 'signed in')
    const got: Array<RealtimePostgresChangesPayload<Record<string, unknown>>> = []
    const statuses: string[] = []
    const channel: RealtimeChannel = sb.channel(`t-${vsn}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'mvp_workflows' }, (c) => { got.push(c) })
      .subscribe((s) => { statuses.push(s) })
    t.teardown(() => sb.removeAllChannels())
    await waitFor('SUBSCRIBED', async () => statuses.includes('SUBSCRIBED'))
    const mine = (await sql.query<{ id: string }>("insert into public.mvp_workflows (user_id, name) values ($1, 'mine') returning id::text", [alice.id])).rows[0]!.id
    await sql.query("insert into public.mvp_workflows (user_id, name) values ($1, 'theirs')", [randomUserId()])
    await sql.query('update public.mvp_workflows set execution_count = 4 where id = $1', [mine])
    await waitFor('the insert and the update', async () => got.length >= 2)
    t.match(got[0], { eventType: 'INSERT', schema: 'public', table: 'mvp_workflows', new: { id: mine, name: 'mine', user_id: alice.id, execution_count: 0, active: false }, errors: null })
    t.match(got[0]?.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    t.match(got[1], { eventType: 'UPDATE', new: { id: mine, execution_count: 4 }, old: {} })
    t.ok(got.every((c) => (c.new as { name?: string }).name !== 'theirs'), 'another user\'s row never arrives')

    standIn.realtime.drop()
    await waitFor('the channel to notice', async () => statuses.includes('CHANNEL_ERROR'))
    await sql.query('update public.mvp_workflows set execution_count = 5 where id = $1', [mine])
    const n = statuses.length
    standIn.realtime.resume()
    await waitFor('SUBSCRIBED again', async () => statuses.slice(n).includes('SUBSCRIBED'), 30_000)
    await sql.query('delete from public.mvp_workflows where id = $1', [mine])
    await waitFor('the delete', async () => got.some((c) => c.eventType === 'DELETE'))
    t.same(got.map((c) => c.eventType), ['INSERT', 'UPDATE', 'DELETE'], 'the update made while disconnected was not replayed')
    t.same(got[2]?.old, { id: mine }, 'a delete carries only the primary key')
    void channel
  })
}

t.test('Realtime refuses a join it cannot authorize, and a table outside the publication', async (t) => {
  const sb = client()
  const statuses: Array<[string, string | undefined]> = []
  sb.channel('anon-only').on('postgres_changes', { event: '*', schema: 'public', table: 'sync_logs' }, () => {})
    .subscribe((s, err) => { statuses.push([s, err?.message]) })
  t.teardown(() => sb.removeAllChannels())
  await waitFor('the refusal', async () => statuses.some(([s]) => s === 'CHANNEL_ERROR'))
  t.match(statuses.find(([s]) => s === 'CHANNEL_ERROR')?.[1], /Unable to subscribe to changes with given parameters.*table: sync_logs/)
})
