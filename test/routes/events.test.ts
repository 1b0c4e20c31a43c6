// GET /events over real HTTP (app.inject cannot stream): two app instances on one real Postgres
// database, a fetch client reading the stream, changes made through either instance's API, by a
// user's RLS transaction and by plain SQL. n8n (for POST /workflows) is nock.
import http from 'node:http'
import t from 'tap'
import nock from 'nock'
import pg from 'pg'
import { buildTestApp, testUser } from '../helpers/app.ts'
import type { TestApp, TestUser } from '../helpers/app.ts'
import { expectCreate } from '../helpers/n8n-nock.ts'
import { mintUserToken, nowSeconds, randomUserId } from '../helpers/tokens.ts'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { EventHub } from '../../src/services/events.ts'
import { serviceScope } from '../../src/store/scope.ts'
import { WORKFLOW_COLUMNS } from '../../src/store/workflow-store.ts'

nock.disableNetConnect()
nock.enableNetConnect(/^127\.0\.0\.1(:\d+)?$/)

interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

/** A Server-Sent Events client on fetch + a stream reader (what a browser front end does). */
class SseClient {
  readonly status: number
  readonly headers: Headers
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  retry: number | undefined
  ended = false
  readonly done: Promise<void>
  private readonly controller: AbortController
  private waiters: Array<() => void> = []

  private constructor (res: Response, controller: AbortController) {
    this.status = res.status
    this.headers = res.headers
    this.controller = controller
    this.done = this.read(res)
  }

  static async open (base: string, user: TestUser, opts: { lastEventId?: string | number, query?: string, headers?: Record<string, string> } = {}): Promise<SseClient> {
    const controller = new AbortController()
    const headers: Record<string, string> = { ...user.auth, accept: 'text/event-stream', ...opts.headers }
    if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId)
    const res = await fetch(`${base}/events${opts.query ?? ''}`, { headers, signal: controller.signal })
    return new SseClient(res, controller)
  }

  private async read (res: Response): Promise<void> {
    if (!res.body) return
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buf += decoder.decode(value, { stream: true })
        let i: number
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.parse(buf.slice(0, i))
          buf = buf.slice(i + 2)
        }
        this.wake()
      }
    } catch {
      // aborted by close()
    }
    this.ended = true
    this.wake()
  }

  private parse (block: string): void {
    const ev: SseEvent = { id: undefined, event: 'message', data: '' }
    let hasData = false
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim())
        continue
      }
      const c = line.indexOf(':')
      const field = c < 0 ? line : line.slice(0, c)
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '')
      if (field === 'id') ev.id = value
      else if (field === 'event') ev.event = value
      else if (field === 'data') {
        ev.data += (hasData ? '\n' : '') + value
        hasData = true
      } else if (field === 'retry') this.retry = Number(value)
    }
    if (hasData) this.events.push(ev)
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Workflow events only (not ready/reset/final events). */
  get changes (): SseEvent[] {
    return this.events.filter((e) => e.event.startsWith('workflow.'))
  }

  async waitFor (what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      if (this.ended && !pred()) throw new Error(`stream ended while waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => e.event))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => [e.id, e.event]))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100))
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async waitForChanges (n: number, timeoutMs = 5000): Promise<SseEvent[]> {
    await this.waitFor(`${n} changes`, () => this.changes.length >= n, timeoutMs)
    return this.changes
  }

  close (): void {
    this.controller.abort()
  }
}

async function listen (h: TestApp): Promise<string> {
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const addr = h.app.server.address()
  if (!addr || typeof addr !== 'object') throw new Error('no address')
  return `http://127.0.0.1:${addr.port}`
}

// Instance 1 migrates a fresh database; instance 2 is another "replica": its own pool (so its own
// LISTEN session) on the same database.
const h1 = await buildTestApp({ env: { RATE_LIMIT_MAX: '100000' } })
const db2 = new PgDatabase({ connectionString: h1.tdb!.url, max: 5 })
const h2 = await buildTestApp({ db: db2, env: { RATE_LIMIT_MAX: '100000', CORS_ORIGINS: 'https://dash.example' } })
const base1 = await listen(h1)
const base2 = await listen(h2)
// plain SQL as the database owner (no role, no claims), as an operator or a migration would write
const admin = new pg.Pool({ connectionString: h1.tdb!.url, max: 4 })
const clients: SseClient[] = []
t.teardown(async () => {
  for (const c of clients) c.close()
  nock.cleanAll()
  nock.enableNetConnect()
  await admin.end()
  await h2.close()
  await db2.close()
  await h1.close()
})

async function stream (base: string, user: TestUser, opts: Parameters<typeof SseClient.open>[2] = {}): Promise<SseClient> {
  const c = await SseClient.open(base, user, opts)
  clients.push(c)
  return c
}

/** Opens a stream and waits for its `ready` event (the stream is then registered and live). */
async function ready (base: string, user: TestUser): Promise<SseClient> {
  const c = await stream(base, user)
  await c.waitFor('ready', () => c.events.some((e) => e.event === 'ready'))
  return c
}

async function insertRow (u: TestUser, name: string, nodes: unknown[] = []): Promise<Record<string, any>> {
  const res = await h1.db.withUser({ sub: u.id, role: 'authenticated' }, (tx) => tx.query<Record<string, any>>(
    `insert into mvp_workflows (user_id, name, nodes) values ($1, $2, $3::jsonb) returning ${WORKFLOW_COLUMNS}`, [u.id, name, JSON.stringify(nodes)]))
  return res.rows[0]!
}

async function renameRow (u: TestUser, id: string, name: string): Promise<Record<string, any>> {
  const res = await h1.db.withUser({ sub: u.id, role: 'authenticated' }, (tx) => tx.query<Record<string, any>>(
    // a direct edit of an authored field: the database moves the version on (trust model)
    `update mvp_workflows set name = $2 where id = $1 returning ${WORKFLOW_COLUMNS}`, [id, name]))
  return res.rows[0]!
}

async function deleteRow (u: TestUser, id: string): Promise<void> {
  await h1.db.withUser({ sub: u.id, role: 'authenticated' }, (tx) => tx.query('delete from mvp_workflows where id = $1', [id]))
}

function summary (events: SseEvent[]): Array<[string, string]> {
  return events.map((e) => [e.event, e.event === 'workflow.delete' ? JSON.parse(e.data).id : `${JSON.parse(e.data).id}:${JSON.parse(e.data).name}`])
}

function ids (events: SseEvent[]): number[] {
  return events.map((e) => Number(e.id))
}

function increasing (xs: number[]): boolean {
  return xs.every((x, i) => i === 0 || x > xs[i - 1]!)
}

t.test('two users on two instances each see exactly their own changes, in order, from any instance and from SQL', async (t) => {
  const a = await testUser()
  const b = await testUser()
  const a1 = await ready(base1, a)
  const a2 = await ready(base2, a)
  const b1 = await ready(base1, b)
  const b2 = await ready(base2, b)
  t.equal(a1.status, 200)
  t.match(a1.headers.get('content-type'), /^text\/event-stream/)
  t.equal(a1.headers.get('cache-control'), 'no-cache, no-transform')
  t.equal(a1.headers.get('x-accel-buffering'), 'no')
  t.ok(a1.headers.get('x-request-id'), 'x-request-id survives the hijack')
  t.equal(a1.retry, 2000, 'retry hint')

  // An event carries the row as read when it is delivered; changes are paced here (each one
  // delivered before the next) so that every event's row is the row of its own change.
  const counts = { a: 0, b: 0 }
  const delivered = async <T>(who: 'a' | 'b', change: Promise<T>): Promise<T> => {
    const value = await change
    counts[who]++
    await Promise.all([a1.waitForChanges(counts.a), a2.waitForChanges(counts.a), b1.waitForChanges(counts.b), b2.waitForChanges(counts.b)])
    return value
  }
  // a user's RLS transactions (as the service's store does), interleaved between the users
  const wa = await delivered('a', insertRow(a, 'a-1'))
  const wb = await delivered('b', insertRow(b, 'b-1'))
  await delivered('a', renameRow(a, wa.id, 'a-2'))
  await delivered('b', renameRow(b, wb.id, 'b-2'))
  // plain SQL, as an operator would (the trigger fires for any writer)
  await delivered('a', admin.query("update mvp_workflows set name = 'a-3' where id = $1", [wa.id]))
  await delivered('b', admin.query("update mvp_workflows set name = 'b-3' where id = $1", [wb.id]))
  // through instance 2's API: a create (n8n mocked) and a delete
  const create = expectCreate('n8n-events-1')
  const created = await fetch(`${base2}/workflows`, {
    method: 'POST',
    headers: { ...a.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'a-api', nodes: [] })
  })
  t.equal(created.status, 201)
  const body = await created.json() as Record<string, any>
  t.ok(create.scope.isDone(), 'n8n create called')
  const del = await fetch(`${base2}/workflows/${wb.id}`, { method: 'DELETE', headers: b.auth })
  t.equal(del.status, 204)
  // through instance 1's API: a delete of A's first workflow
  const del2 = await fetch(`${base1}/workflows/${wa.id}`, { method: 'DELETE', headers: a.auth })
  t.equal(del2.status, 204)

  // What A must see: its direct changes, then the API create (an insert and the updates of the
  // deploy saga, whose last one carries the row as the API answered it), then the delete.
  const log = (await admin.query<{ id: string, user_id: string, workflow_id: string, op: string }>(
    'select e.id::text as id, e.user_id::text as user_id, e.workflow_id::text as workflow_id, e.op from workflow_events e order by e.id')).rows
  const expectedA = log.filter((r) => r.user_id === a.id)
  const expectedB = log.filter((r) => r.user_id === b.id)
  t.ok(expectedA.length >= 6, `A has ${expectedA.length} logged events`)
  t.equal(expectedB.length, 4)

  for (const [name, c, expected, user] of [['A@1', a1, expectedA, a], ['A@2', a2, expectedA, a], ['B@1', b1, expectedB, b], ['B@2', b2, expectedB, b]] as const) {
    const got = await c.waitForChanges(expected.length)
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.same(c.changes.map((e) => [e.id, e.event, JSON.parse(e.data).id]), expected.map((r) => [r.id, `workflow.${r.op.toLowerCase()}`, r.workflow_id]),
      `${name}: exactly the user's logged events, in log order`)
    t.ok(increasing(ids(got)), `${name}: ids increase`)
    for (const e of got) {
      if (e.event !== 'workflow.delete') t.equal(JSON.parse(e.data).user_id, user.id, `${name}: only own rows`)
    }
  }
  t.same(summary(b1.changes), [
    ['workflow.insert', `${wb.id}:b-1`], ['workflow.update', `${wb.id}:b-2`], ['workflow.update', `${wb.id}:b-3`], ['workflow.delete', wb.id]
  ], 'B: insert, update (RLS), update (SQL), delete (instance 2 API)')
  t.same(summary(a1.changes.slice(0, 3)), [
    ['workflow.insert', `${wa.id}:a-1`], ['workflow.update', `${wa.id}:a-2`], ['workflow.update', `${wa.id}:a-3`]
  ])
  const apiEvents = a1.changes.filter((e) => JSON.parse(e.data).id === body.id)
  t.equal(apiEvents[0]?.event, 'workflow.insert', 'the API create starts with an insert')
  t.same(JSON.parse(apiEvents[apiEvents.length - 1]!.data), body, 'the last event of the created workflow is the row the API answered (contract shape)')
  t.same(a1.changes.at(-1) && JSON.parse(a1.changes.at(-1)!.data), { id: wa.id }, 'a delete carries {id}')
})

t.test('a burst of concurrent writes of several users: each stream gets its user\'s events in log order, ending on the current rows', async (t) => {
  const users = [await testUser(), await testUser(), await testUser()]
  const streams = await Promise.all(users.flatMap((u) => [ready(base1, u), ready(base2, u)]))
  const rows = await Promise.all(users.flatMap((u) => [insertRow(u, 'w0'), insertRow(u, 'w1')]))
  // 60 updates from many connections at once (both pools and plain SQL)
  await Promise.all(Array.from({ length: 60 }, (_, i) => {
    const row = rows[i % rows.length]!
    const user = users.find((u) => u.id === row.user_id)!
    if (i % 3 === 0) return admin.query('update mvp_workflows set name = $2 where id = $1', [row.id, `sql ${i}`])
    const db = i % 3 === 1 ? h1.db : db2
    return db.withUser({ sub: user.id, role: 'authenticated' }, (tx) => tx.query('update mvp_workflows set name = $2 where id = $1', [row.id, `rls ${i}`]))
  }))
  const log = (await admin.query<{ id: string, user_id: string, workflow_id: string }>(
    'select e.id::text as id, e.user_id::text as user_id, e.workflow_id::text as workflow_id from workflow_events e where e.user_id = any($1::uuid[]) order by e.id', [users.map((u) => u.id)])).rows
  const current = new Map((await admin.query<{ id: string, name: string, version: number }>('select id::text, name, version from mvp_workflows where id = any($1::uuid[])', [rows.map((r) => r.id)])).rows.map((r) => [r.id, r]))
  for (const [i, c] of streams.entries()) {
    const u = users[Math.floor(i / 2)]!
    const expected = log.filter((r) => r.user_id === u.id)
    t.equal(expected.length, 2 + 20, 'two inserts and 20 updates per user in the log')
    await c.waitForChanges(expected.length)
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.same(c.changes.map((e) => [e.id, JSON.parse(e.data).id]), expected.map((r) => [r.id, r.workflow_id]), `stream ${i}: exactly its user's events, in log order`)
    for (const wid of new Set(expected.map((r) => r.workflow_id))) {
      const last = c.changes.filter((e) => JSON.parse(e.data).id === wid).at(-1)!
      t.match(JSON.parse(last.data), { name: current.get(wid)!.name, version: current.get(wid)!.version, user_id: u.id }, 'the last event of a workflow carries its current row')
    }
  }
  for (const c of streams) c.close()
})

t.test('Last-Event-ID replays exactly the missed events, then goes on live without duplicates', async (t) => {
  const u = await testUser()
  const first = await ready(base1, u)
  const w0 = await insertRow(u, 'zero')
  const w1 = await insertRow(u, 'one')
  await renameRow(u, w1.id, 'two')
  const seen = await first.waitForChanges(3)
  const lastSeen = seen[2]!.id!
  first.close()
  await first.done

  // missed while disconnected (RLS writes and plain SQL)
  await renameRow(u, w1.id, 'three')
  const w2 = await insertRow(u, 'other')
  await admin.query("update mvp_workflows set name = 'four' where id = $1", [w1.id])
  await deleteRow(u, w0.id)
  const missed = (await admin.query<{ id: string }>('select e.id::text as id from workflow_events e where e.user_id = $1 and e.id > $2 order by e.id', [u.id, lastSeen])).rows.map((r) => r.id)
  t.equal(missed.length, 4)

  const again = await stream(base2, u, { lastEventId: lastSeen })
  await again.waitForChanges(4)
  t.same(again.changes.map((e) => e.id), missed, 'exactly the missed events, by id')
  t.same(summary(again.changes), [
    ['workflow.update', `${w1.id}:four`], ['workflow.insert', `${w2.id}:other`], ['workflow.update', `${w1.id}:four`], ['workflow.delete', w0.id]
  ], 'in order; a replayed update carries the current row')
  t.notOk(again.events.some((e) => e.event === 'ready'), 'no ready event on a replay')
  await renameRow(u, w1.id, 'five')
  await again.waitForChanges(5)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(again.changes.length, 5, 'then live, no duplicates')
  t.equal(JSON.parse(again.changes[4]!.data).name, 'five')

  // ?since= is the same catch-up (for clients that cannot set the header); the header wins
  const viaQuery = await stream(base1, u, { query: `?since=${lastSeen}` })
  await viaQuery.waitForChanges(5)
  t.same(viaQuery.changes.map((e) => e.id), [...missed, again.changes[4]!.id])
  const both = await stream(base1, u, { query: '?since=0', lastEventId: again.changes[4]!.id! })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(both.changes.length, 0, 'Last-Event-ID wins over ?since')
  for (const c of [again, viaQuery, both]) c.close()

  // a row inserted and deleted while the client was away: its insert has no row to carry and is
  // skipped; the delete is replayed
  const position = again.changes[4]!.id!
  const gone = await insertRow(u, 'ephemeral')
  await deleteRow(u, gone.id)
  const later = await stream(base1, u, { lastEventId: position })
  await later.waitForChanges(1)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.same(summary(later.changes), [['workflow.delete', gone.id]])
  later.close()
})

t.test('event ids follow commit order: a change committed late is never behind a cursor already handed out', async (t) => {
  const u = await testUser()
  const w1 = await insertRow(u, 'slow')
  const w2 = await insertRow(u, 'fast')
  const c = await ready(base1, u)
  // A changes w1 first but commits last; B changes w2 and commits at once
  const slow = await admin.connect()
  try {
    await slow.query('begin')
    await slow.query("update mvp_workflows set name = 'slow 2' where id = $1", [w1.id])
    await admin.query("update mvp_workflows set name = 'fast 2' where id = $1", [w2.id])
    await c.waitForChanges(1)
    t.equal(JSON.parse(c.changes[0]!.data).name, 'fast 2')
    c.close()
    await slow.query('commit')
  } finally {
    slow.release()
  }
  // reconnecting from the cursor of B's event must still bring A's change
  const again = await stream(base1, u, { lastEventId: c.changes[0]!.id! })
  await again.waitForChanges(1)
  t.match(JSON.parse(again.changes[0]!.data), { id: w1.id, name: 'slow 2' })
  t.ok(Number(again.changes[0]!.id) > Number(c.changes[0]!.id), 'the late commit has the higher id')
  again.close()
})

t.test('catch-up that the log cannot serve is a reset, never a silent gap', async (t) => {
  const u = await testUser()
  const w = await insertRow(u, 'r')
  const head = Number((await admin.query<{ id: string }>('select max(id)::text as id from workflow_events where user_id = $1', [u.id])).rows[0]!.id)

  const bogus = await stream(base1, u, { lastEventId: head + 1_000_000 })
  await bogus.waitFor('reset', () => bogus.events.some((e) => e.event === 'reset'))
  const reset = bogus.events.find((e) => e.event === 'reset')!
  t.match(JSON.parse(reset.data), { reason: 'unknown_id', last_event_id: Number(reset.id) })
  t.ok(Number(reset.id) >= head, 'reset carries the position to continue from')
  await renameRow(u, w.id, 'r2')
  await bogus.waitForChanges(1)
  t.equal(JSON.parse(bogus.changes[0]!.data).name, 'r2', 'then live')
  bogus.close()

  // retention: events purged past the client's position
  await renameRow(u, w.id, 'r3')
  // The purge the cleanup cron runs (plugins/services.ts: extraPurges), here with no grace.
  const retention = { run: (dryRun: boolean) => h1.app.store.purgeEventLog(serviceScope, 0, dryRun) }
  const wouldPurge = await retention.run(true)
  t.ok(wouldPurge > 0, `dry run counts ${wouldPurge} events`)
  t.ok(await retention.run(true) >= wouldPurge, 'and removes nothing')
  t.ok(await retention.run(false) >= wouldPurge, 'the purge removes them')
  t.equal(Number((await admin.query('select count(*) from workflow_events where user_id = $1', [u.id])).rows[0].count), 0)
  const purged = await stream(base1, u, { lastEventId: head })
  await purged.waitFor('reset', () => purged.events.some((e) => e.event === 'reset'))
  const purgedReset = purged.events.find((e) => e.event === 'reset')!
  t.equal(JSON.parse(purgedReset.data).reason, 'purged')
  purged.close()

  // further behind than the replay limit
  h1.app.events.configure({ replayLimit: 3 })
  t.teardown(() => { h1.app.events.configure({ replayLimit: 1000 }) })
  const from = Number(purgedReset.id)
  for (let i = 0; i < 4; i++) await renameRow(u, w.id, `many ${i}`)
  const behind = await stream(base1, u, { lastEventId: from })
  await behind.waitFor('reset', () => behind.events.some((e) => e.event === 'reset'))
  t.equal(JSON.parse(behind.events.find((e) => e.event === 'reset')!.data).reason, 'too_many')
  t.equal(behind.changes.length, 0)
  behind.close()
})

t.test('a dropped LISTEN connection is reopened and streams catch up from the log', async (t) => {
  const u = await testUser()
  const c = await ready(base1, u)
  const w = await insertRow(u, 'l0')
  await c.waitForChanges(1)
  const before = h1.app.events.stats.listenerReconnects
  // kill both instances' LISTEN sessions, then write at once, while nobody listens
  const killed = await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'listen %'")
  t.ok(killed.rowCount! >= 2, 'LISTEN sessions terminated')
  for (let i = 1; i <= 5; i++) await renameRow(u, w.id, `l${i}`)
  await c.waitForChanges(6, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(c.changes.length, 6, 'no event lost, none twice')
  t.ok(increasing(ids(c.changes)))
  t.equal(JSON.parse(c.changes[5]!.data).name, 'l5')
  t.ok(h1.app.events.stats.listenerReconnects > before, 'the listener reconnected')
  t.ok(h1.app.events.listening)
  await renameRow(u, w.id, 'l6')
  await c.waitForChanges(7)
  c.close()
})

t.test('a LISTEN connection that silently stops delivering is found by the probe, replaced, and the streams catch up', async (t) => {
  // The hub itself (no HTTP), on the same database, with a LISTEN that goes deaf on demand (a
  // half-open TCP connection: no error, no notifications).
  let deaf = false
  const hub = new EventHub({
    store: h1.app.store,
    db: h1.db,
    settings: { probeMs: 100, probeTimeoutMs: 200 },
    listen: (db, channel, onPayload, onLost) => db.listen(channel, (p) => { if (!deaf) onPayload(p) }, onLost)
  })
  await hub.start()
  t.teardown(() => hub.stop())
  const u = await testUser()
  const s = hub.open({ userId: u.id, claims: { sub: u.id, role: 'authenticated' } })
  const start = await s.begin(null)
  let out = ''
  const sink = { write (c: string) { out += c; return true }, end () {}, destroy () {}, once () { return sink }, destroyed: false, writableEnded: false }
  s.attach(sink, start)
  const w = await insertRow(u, 'p0')
  const count = (): number => (out.match(/event: workflow\./g) ?? []).length
  const until = async (what: string, pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  await until('the insert', () => count() === 1)
  deaf = true
  for (let i = 1; i <= 3; i++) await renameRow(u, w.id, `p${i}`)
  await until('the catch-up', () => count() === 4)
  t.ok(hub.stats.listenerReconnects >= 1, 'the probe replaced the connection')
  deaf = false
  await renameRow(u, w.id, 'p4')
  await until('live again', () => count() === 5)
  const eventIds = [...out.matchAll(/^id: (\d+)\nevent: workflow\./gm)].map((m) => Number(m[1]))
  t.equal(new Set(eventIds).size, 5, 'no duplicate')
  t.ok(increasing(eventIds), 'in order')
  s.close()
})

t.test('the event log under RLS: a user reads only their own events and cannot write any', async (t) => {
  const a = await testUser()
  const b = await testUser()
  await insertRow(a, 'rls a')
  await insertRow(b, 'rls b')
  const asB = { sub: b.id, role: 'authenticated' as const }
  const seen = await h1.db.withUser(asB, (tx) => tx.query<{ user_id: string }>('select user_id::text from workflow_events'))
  t.ok(seen.rows.length >= 1 && seen.rows.every((r) => r.user_id === b.id), 'only own events visible')
  await t.rejects(h1.db.withUser(asB, (tx) => tx.query("insert into workflow_events (user_id, workflow_id, op) values ($1, gen_random_uuid(), 'INSERT')", [b.id])), /permission denied/)
  await t.rejects(h1.db.withUser(asB, (tx) => tx.query('delete from workflow_events')), /permission denied/)
  await t.rejects(h1.db.withUser(asB, (tx) => tx.query("select public.purge_workflow_events(interval '0 seconds')")), /permission denied/)
})

t.test('at most 5 streams per user; the 6th is a 429 problem', async (t) => {
  const u = await testUser()
  const open: SseClient[] = []
  for (let i = 0; i < 5; i++) open.push(await ready(base1, u))
  const sixth = await fetch(`${base1}/events`, { headers: u.auth })
  t.equal(sixth.status, 429)
  t.match(sixth.headers.get('content-type'), /^application\/problem\+json/)
  t.ok(Number(sixth.headers.get('retry-after')) > 0, 'Retry-After')
  t.match(await sixth.json(), { code: 'rate_limited', status: 429 })
  t.equal((await h1.app.metrics.openEventStreams.get()).values[0]?.value, h1.app.events.streamCount, 'the open-streams gauge follows')
  // another user is not affected, nor another instance (the bound is per process)
  const other = await ready(base1, await testUser())
  t.equal(other.status, 200)
  open[0]!.close()
  await open[0]!.done
  const deadline = Date.now() + 2000
  let again: SseClient | undefined
  while (Date.now() < deadline) {
    const c = await stream(base1, u)
    if (c.status === 200) {
      again = c
      break
    }
    c.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(again?.status, 200, 'a closed stream frees its place')
  for (const c of [...open, other, again]) c?.close()
})

t.test('a client that does not read is cut off with `event: overflow`; its backlog is bounded; it resumes with Last-Event-ID', async (t) => {
  h1.app.events.configure({ maxQueuedEvents: 10, maxQueuedBytes: 8_000_000 })
  t.teardown(() => { h1.app.events.configure({ maxQueuedEvents: 1000, maxQueuedBytes: 4 * 1024 * 1024 }) })
  const u = await testUser()
  const fast = await ready(base1, u)
  // a raw HTTP client that stops reading after the headers
  const port = new URL(base1).port
  const raw = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', headers: u.auth }, resolve)
    req.on('error', reject)
  })
  t.equal(raw.statusCode, 200)
  raw.pause()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const big = Array.from({ length: 40 }, (_, i) => ({ name: `n${i}`, type: 'n8n-nodes-base.set', parameters: { blob: 'x'.repeat(5000) } }))
  const w = await insertRow(u, 'big', big)
  let updates = 0
  const overflowsBefore = h1.app.events.stats.overflows
  while (h1.app.events.stats.overflows === overflowsBefore && updates < 400) {
    await renameRow(u, w.id, `big ${++updates}`)
    // the reading client keeps up (it shares this process's event loop with the server)
    await fast.waitForChanges(updates + 1)
  }
  t.ok(h1.app.events.stats.overflows > overflowsBefore, `overflowed after ${updates} updates of ~200 KB`)

  // the slow client now reads what reached its socket: events, then the final overflow event
  let text = ''
  raw.setEncoding('utf8')
  raw.on('data', (chunk: string) => { text += chunk })
  raw.resume()
  await new Promise<void>((resolve) => raw.on('end', () => resolve()))
  const blocks = text.split('\n\n').filter(Boolean)
  const last = blocks.at(-1)!
  t.match(last, /^event: overflow\ndata: /, 'the stream ends with event: overflow')
  const info = JSON.parse(last.split('\ndata: ')[1]!)
  const received = blocks.filter((b) => b.includes('event: workflow.')).map((b) => /^id: (\d+)/.exec(b)![1]!)
  t.equal(String(info.last_event_id), received.at(-1) ?? String(info.last_event_id), 'overflow names the last event id the client got')
  t.ok(received.length < updates + 1, `only ${received.length} of ${updates + 1} events were sent (the backlog was dropped)`)

  // the fast client of the same user got everything
  await fast.waitForChanges(updates + 1, 10_000)
  t.equal(fast.changes.length, updates + 1)

  // resume from the last id received: exactly the rest
  const resumed = await stream(base1, u, { lastEventId: received.at(-1)! })
  const rest = fast.changes.filter((e) => Number(e.id) > Number(received.at(-1)))
  await resumed.waitForChanges(rest.length, 10_000)
  t.same(resumed.changes.map((e) => e.id), rest.map((e) => e.id), 'the replay gives exactly what the slow client missed')
  fast.close()
  resumed.close()
})

t.test('heartbeat comments arrive at the configured interval', async (t) => {
  h1.app.events.configure({ heartbeatMs: 50 })
  t.teardown(() => { h1.app.events.configure({ heartbeatMs: 15_000 }) })
  const c = await ready(base1, await testUser())
  await c.waitFor('3 pings', () => c.comments.filter((x) => x === 'ping').length >= 3, 2000)
  t.pass('pings')
  c.close()
})

t.test('a stream ends with event: reauthenticate when its access token expires', async (t) => {
  h1.app.events.configure({ heartbeatMs: 50 })
  t.teardown(() => { h1.app.events.configure({ heartbeatMs: 15_000 }) })
  const id = randomUserId()
  const token = await mintUserToken({ sub: id, exp: nowSeconds() + 2 })
  const c = await ready(base1, { id, token, auth: { authorization: `Bearer ${token}` } })
  await c.done
  const final = c.events.at(-1)!
  t.equal(final.event, 'reauthenticate')
  t.match(JSON.parse(final.data), { reason: 'reauthenticate' })
})

t.test('authentication and input', async (t) => {
  const u = await testUser()
  const none = await fetch(`${base1}/events`)
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer/)
  t.match(none.headers.get('content-type'), /^application\/problem\+json/)
  const inUrl = await fetch(`${base1}/events?access_token=${u.token}`)
  t.equal(inUrl.status, 401, 'a token in the URL is not accepted')
  const bad = await fetch(`${base1}/events`, { headers: { ...u.auth, 'last-event-id': 'abc' } })
  t.equal(bad.status, 400)
  t.match(await bad.json(), { code: 'validation_failed' })
  const badQuery = await fetch(`${base1}/events?since=-1`, { headers: u.auth })
  t.equal(badQuery.status, 400)
})

t.test('CORS headers are sent on the hijacked stream', async (t) => {
  const c = await ready(base2, await testUser())
  // no Origin sent by the helper: open one with it
  const u = await testUser()
  const withOrigin = await stream(base2, u, { headers: { origin: 'https://dash.example' } })
  await withOrigin.waitFor('ready', () => withOrigin.events.some((e) => e.event === 'ready'))
  t.equal(withOrigin.headers.get('access-control-allow-origin'), 'https://dash.example')
  c.close()
  withOrigin.close()
})

t.test('closing the app ends its streams cleanly with event: shutdown', async (t) => {
  const h3 = await buildTestApp({ db: h1.db })
  const base3 = await listen(h3)
  const u = await testUser()
  const c = await ready(base3, u)
  t.equal(h3.app.events.streamCount, 1)
  const started = Date.now()
  await h3.close()
  t.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`)
  await c.done
  t.ok(c.ended, 'the response ended')
  const final = c.events.at(-1)!
  t.equal(final.event, 'shutdown')
  t.match(JSON.parse(final.data), { reason: 'shutdown' })
  t.equal(h3.app.events.streamCount, 0)
})
