// GET /workflows through the list cache (src/services/workflow-list-cache.ts): an answer is kept
// while the caller's list stamp holds, and every change to the caller's rows, wherever it was
// made, is in the very next answer. The truth each answer is compared with is a second instance
// of the service on the same database with the cache turned off (WORKFLOW_LIST_CACHE_MB=0), as
// another replica would be; writes go straight to Postgres (as the owner, as a sync or another
// replica writes) or through the user's own token (as the Data API runs them).
import t from 'tap'
import type { Test } from 'tap'
import fc from 'fast-check'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestUser } from '../helpers/app.ts'
import { PgDatabase } from '../../src/db/pg-database.ts'

const env = { RATE_LIMIT_MAX: '1000000' }
const ta = await buildTestApp({ env })
t.teardown(() => ta.close())
const { app, db } = ta
// the other replica: its own pool on the same database, no cache
const truthDb = new PgDatabase({ connectionString: ta.tdb!.url, max: 4 })
const truth = await buildTestApp({ env: { ...env, WORKFLOW_LIST_CACHE_MB: '0' }, db: truthDb })
t.teardown(async () => { await truth.close(); await truthDb.close() })

async function seed (u: TestUser, name: string, status = 'deployed'): Promise<string> {
  const r = await db.query<{ id: string }>(
    'insert into public.mvp_workflows (user_id, name, status, n8n_workflow_id) values ($1, $2, $3, $4) returning id',
    [u.id, name, status, `n8n-${name}`])
  return r.rows[0]!.id
}

/** As PostgREST runs a request with the user's token: role authenticated, the user's claims (RLS). */
async function asUser (u: TestUser, sql: string, params: unknown[]): Promise<number> {
  return await db.withUser({ sub: u.id, role: 'authenticated', aud: 'authenticated' }, async (tx) => (await tx.query(sql, params)).rowCount)
}

const get = (on: typeof app, u: TestUser, url: string, headers: Record<string, string> = {}) => on.inject({ method: 'GET', url, headers: { ...u.auth, ...headers } })
const stats = () => {
  const s = app.workflowService.listCacheStats()
  if (s === null) throw new Error('the list cache is off')
  return s
}

/** The cached answer and the uncached one agree: status, body and ETag. */
async function agrees (t: Test, u: TestUser, url: string, what: string): Promise<Record<string, unknown>> {
  const [mine, theirs] = [await get(app, u, url), await get(truth.app, u, url)]
  t.equal(mine.statusCode, 200, `${what}: 200 (${mine.body.slice(0, 200)})`)
  t.same(mine.json(), theirs.json(), `${what}: the same page as a fresh read`)
  t.equal(mine.headers.etag, theirs.headers.etag, `${what}: the same ETag`)
  return mine.json()
}

t.test('a repeated GET is served from the cache; each kind of change is in the next answer', async (t) => {
  t.equal(truth.app.workflowService.listCacheStats(), null, 'WORKFLOW_LIST_CACHE_MB=0: no cache')
  const a = await testUser()
  const b = await testUser()
  const ids = [await seed(a, 'one'), await seed(a, 'two')]
  await seed(b, 'b-one')

  await agrees(t, a, '/workflows', 'first read')
  const hitsBefore = stats().hits
  const again = await get(app, a, '/workflows')
  t.equal(stats().hits, hitsBefore + 1, 'the second read is a hit')
  t.same(again.json().data.map((w: { id: string }) => w.id), [...ids].reverse())
  const notModified = await get(app, a, '/workflows', { 'if-none-match': again.headers.etag as string })
  t.equal(notModified.statusCode, 304, 'If-None-Match: 304 from the cache')
  t.equal(stats().hits, hitsBefore + 2)

  const changes: Array<[string, () => Promise<unknown>, (page: Record<string, unknown>) => void]> = [
    ['a count moved by a sync (owner)', () => db.query('update public.mvp_workflows set execution_count = 7 where id = $1', [ids[0]]),
      (p) => t.equal((p.data as Array<{ execution_count: number }>)[1]!.execution_count, 7)],
    ['a rename with the user\'s own token (Data API)', () => asUser(a, 'update public.mvp_workflows set name = $1 where id = $2', ['renamed', ids[1]]),
      (p) => t.equal((p.data as Array<{ name: string }>)[0]!.name, 'renamed')],
    ['an update that changes nothing visible', () => db.query('update public.mvp_workflows set name = name where id = $1', [ids[1]]),
      () => {}],
    ['a new row', async () => { ids.push(await seed(a, 'three')) },
      (p) => t.equal((p.data as unknown[]).length, 3)],
    ['a row moved to another user', () => db.query('update public.mvp_workflows set user_id = $1 where id = $2', [b.id, ids[2]]),
      (p) => t.equal((p.data as unknown[]).length, 2)],
    ['a delete with the user\'s own token', () => asUser(a, 'delete from public.mvp_workflows where id = $1', [ids[0]]),
      (p) => t.same((p.data as Array<{ id: string }>).map((w) => w.id), [ids[1]])]
  ]
  for (const [what, change, check] of changes) {
    await get(app, a, '/workflows')
    const etag = (await get(app, a, '/workflows')).headers.etag as string
    const hits = stats().hits
    await change()
    check(await agrees(t, a, '/workflows', what))
    t.equal(stats().hits, hits, `${what}: not a hit`)
    t.equal((await get(app, a, '/workflows', { 'if-none-match': etag })).statusCode, 200, `${what}: the old ETag no longer matches`)
  }
  const bPage = await agrees(t, b, '/workflows', 'the other user, after the move')
  t.equal((bPage.data as unknown[]).length, 2)

  const exposition = (await app.metrics.render()).body
  t.match(exposition, new RegExp(`workflow_sync_workflow_list_cache_lookups_total\\{result="hit"\\} ${stats().hits}\\b`), 'hits in /metrics')
  t.match(exposition, new RegExp(`workflow_sync_workflow_list_cache_lookups_total\\{result="miss"\\} ${stats().misses}\\b`), 'misses in /metrics')
  t.match(exposition, /workflow_sync_workflow_list_cache_bytes [1-9]\d*\b/, 'the bytes held')
  t.notMatch((await truth.app.metrics.render()).body, /workflow_list_cache_lookups_total\{/, 'a cache that is off exports no lookups')

  // another user's change leaves this user's entry alone
  await get(app, a, '/workflows')
  const hits = stats().hits
  await db.query('update public.mvp_workflows set execution_count = execution_count + 1 where user_id = $1', [b.id])
  await get(app, a, '/workflows')
  t.equal(stats().hits, hits + 1, 'still a hit after another user\'s change')
})

t.test('every query shape has its own entry', async (t) => {
  const u = await testUser()
  for (let i = 0; i < 4; i++) await seed(u, `w${i}`, i % 2 === 0 ? 'deployed' : 'error')
  const urls = ['/workflows', '/workflows?limit=2', '/workflows?include=definition', '/workflows?status=error', '/workflows?active=false&limit=3']
  const first = await get(app, u, '/workflows?limit=2')
  urls.push(`/workflows?limit=2&cursor=${String(first.json().next_cursor)}`)
  for (let round = 0; round < 2; round++) {
    for (const url of urls) await agrees(t, u, url, `${url} (round ${round + 1})`)
  }
})

t.test('a change committed while a GET is on its way is never lost, under concurrent readers', async (t) => {
  const u = await testUser()
  const id = await seed(u, 'counted')
  const readers = Array.from({ length: 8 }, async () => {
    const seen: number[] = []
    for (let i = 0; i < 40; i++) seen.push((await get(app, u, '/workflows')).json().data[0].execution_count)
    return seen
  })
  let lagging = 0
  for (let n = 1; n <= 40; n++) {
    await db.query('update public.mvp_workflows set execution_count = $1 where id = $2', [n, id])
    // committed and acknowledged: a GET that starts now must see it
    const seen = (await get(app, u, '/workflows')).json().data[0].execution_count
    if (seen !== n) lagging++
  }
  t.equal(lagging, 0, 'every GET after a commit saw it')
  const series = await Promise.all(readers)
  t.equal(series.length, 8)
  t.ok(series.every((s) => s.length === 40 && s.every((v, i) => i === 0 || v >= s[i - 1]!)), 'each reader saw the count only go up')
})

t.test('property: any sequence of changes and reads answers what a fresh read answers', async (t) => {
  const users = [await testUser(), await testUser()]
  const rows: Array<{ id: string, owner: number }> = []
  const op = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), user: fc.nat(1), status: fc.constantFrom('deployed', 'error', 'pending') }),
    fc.record({ kind: fc.constant('count' as const), row: fc.nat(), n: fc.nat(1000) }),
    fc.record({ kind: fc.constant('rename' as const), row: fc.nat(), name: fc.string({ minLength: 1, maxLength: 12 }) }),
    fc.record({ kind: fc.constant('move' as const), row: fc.nat() }),
    fc.record({ kind: fc.constant('delete' as const), row: fc.nat() }),
    fc.record({ kind: fc.constant('read' as const), user: fc.nat(1), limit: fc.integer({ min: 1, max: 4 }), status: fc.constantFrom(undefined, 'deployed', 'error'), definition: fc.boolean() })
  )
  let reads = 0
  let made = 0
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
    for (const o of ops) {
      const row = 'row' in o && rows.length > 0 ? rows[o.row % rows.length]! : undefined
      if (o.kind === 'insert') rows.push({ id: await seed(users[o.user]!, `p${made++}`, o.status), owner: o.user })
      else if (o.kind === 'count' && row) await db.query('update public.mvp_workflows set execution_count = $1 where id = $2', [o.n, row.id])
      else if (o.kind === 'rename' && row) await asUser(users[row.owner]!, 'update public.mvp_workflows set name = $1 where id = $2', [o.name, row.id])
      else if (o.kind === 'move' && row) {
        row.owner = 1 - row.owner
        await db.query('update public.mvp_workflows set user_id = $1 where id = $2', [users[row.owner]!.id, row.id])
      } else if (o.kind === 'delete' && row) {
        await db.query('delete from public.mvp_workflows where id = $1', [row.id])
        rows.splice(rows.indexOf(row), 1)
      } else if (o.kind === 'read') {
        const q = new URLSearchParams({ limit: String(o.limit) })
        if (o.status) q.set('status', o.status)
        if (o.definition) q.set('include', 'definition')
        const url = `/workflows?${q.toString()}`
        const [mine, theirs] = [await get(app, users[o.user]!, url), await get(truth.app, users[o.user]!, url)]
        reads++
        if (mine.statusCode !== 200 || mine.body !== theirs.body || mine.headers.etag !== theirs.headers.etag) {
          throw new Error(`${url}: cached ${mine.statusCode} ${mine.body} vs fresh ${theirs.body}`)
        }
      }
    }
  }), { numRuns: 30 })
  t.ok(reads > 30, `${reads} reads compared`)
  t.ok(stats().hits > 0, `hits happened (${stats().hits})`)
})
