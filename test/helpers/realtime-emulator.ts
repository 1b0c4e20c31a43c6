// A Supabase Realtime stand-in (postgres_changes only) on a real WebSocket, speaking the Phoenix
// channel protocol as @supabase/realtime-js (2.119) speaks it — read from its source:
// - `GET /realtime/v1/websocket?apikey=<anon key>&vsn=2.0.0` upgrades; vsn 2.0.0 frames are JSON
//   arrays `[join_ref, ref, topic, event, payload]`, vsn 1.0.0 frames JSON objects.
// - `phoenix`/`heartbeat` → `phx_reply` {status: 'ok', response: {}}.
// - `phx_join` on `realtime:<name>` with {config: {postgres_changes: [{event, schema, table,
//   filter?}], …}, access_token?} → `phx_reply` {status: 'ok', response: {postgres_changes: [the
//   same entries, each with the server's `id`]}} (the client matches them by position), then a
//   `system` message "Subscribed to PostgreSQL"; an invalid or expired token, or a table outside
//   the `supabase_realtime` publication, → `phx_reply` {status: 'error', response: {reason}}.
// - `access_token` {access_token} → the channel's claims change (no reply, as the server).
// - `phx_leave` → `phx_reply` ok and `phx_close`.
// - a change → `postgres_changes` {ids, data: {schema, table, commit_timestamp, type, columns,
//   record, old_record, errors: null}} with the channel's join_ref.
// The changes are REAL database changes: a trigger on every table of the `supabase_realtime`
// publication records the row (to_jsonb of NEW/OLD, as of the statement) in realtime_emu.changes
// and NOTIFYs its sequence number at commit, standing in for the WAL that Realtime decodes. Each
// INSERT/UPDATE reaches a subscriber only if the subscriber's claims can SELECT the row under RLS
// (checked in Postgres as the subscriber's role, by primary key, like Realtime's own check); a
// DELETE reaches every subscriber of the table with only the primary key in old_record (Realtime
// cannot check RLS on a deleted row). There is no replay: a client that was disconnected misses
// what happened meanwhile, as with the real service.
// Not emulated: broadcast, presence, filters other than `col=eq.value`, private channels,
// replica identity full (old_record of an UPDATE is empty), rate limits.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import pg from 'pg'
import { WebSocketServer } from 'ws'
import type { WebSocket } from 'ws'
import type { Claims, SupabaseHandler } from './postgrest-emulator.ts'

type Frame = { join_ref: string | null, ref: string | null, topic: string, event: string, payload: unknown }
interface Binding { id: number, event: string, schema: string, table: string, filter?: string }
interface Channel { topic: string, joinRef: string | null, claims: Claims, bindings: Binding[] }
interface Conn { ws: WebSocket, vsn: string, channels: Map<string, Channel> }

export interface SentChange { sub: string | null, topic: string, type: string, id: unknown }

export interface RealtimeEmulator {
  /** Open sockets now. */
  readonly connections: number
  /** Joins answered ok so far. */
  readonly joins: number
  /** Upgrades refused while dropped (the client's reconnection attempts). */
  readonly refusedUpgrades: number
  /** Every postgres_changes message sent, in order (who got what). */
  readonly sent: SentChange[]
  /** Closes every socket abruptly (no close frame: the client sees 1006) and refuses new ones (503) until resume(). */
  drop (): void
  resume (): void
  /** Answers every join with this error reason until called with null. */
  refuseJoins (reason: string | null): void
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void
  close (): Promise<void>
}

const CHANGES_DDL = `
create schema if not exists realtime_emu;
create table if not exists realtime_emu.changes (
  seq bigserial primary key,
  op text not null,
  schema_name text not null,
  table_name text not null,
  record jsonb,
  old_record jsonb,
  committed_at timestamptz not null default now()
);
create or replace function realtime_emu.capture() returns trigger language plpgsql security definer set search_path = '' as $$
declare s bigint;
begin
  insert into realtime_emu.changes (op, schema_name, table_name, record, old_record)
  values (tg_op, tg_table_schema, tg_table_name,
          case when tg_op <> 'DELETE' then to_jsonb(new) end, case when tg_op <> 'INSERT' then to_jsonb(old) end)
  returning seq into s;
  perform pg_notify('realtime_emu', s::text);
  return null;
end $$;`

/** A small stable integer per subscription, like the server's phash of the params. */
function bindingId (b: Omit<Binding, 'id'>): number {
  let h = 2166136261
  for (const ch of JSON.stringify([b.event, b.schema, b.table, b.filter ?? null])) h = Math.imul(h ^ ch.charCodeAt(0), 16777619)
  return (h >>> 0) % 100_000_000
}

export async function startRealtimeEmulator (db: SupabaseHandler, databaseUrl: string): Promise<RealtimeEmulator> {
  const pool = db.pool
  await pool.query(CHANGES_DDL)
  const published = await pool.query<{ schemaname: string, tablename: string }>(
    "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'")
  for (const t of published.rows) {
    const trig = `realtime_emu_${t.tablename}`
    await pool.query(`drop trigger if exists "${trig}" on "${t.schemaname}"."${t.tablename}"`)
    await pool.query(`create trigger "${trig}" after insert or update or delete on "${t.schemaname}"."${t.tablename}" for each row execute function realtime_emu.capture()`)
  }
  const isPublished = (schema: string, table: string): boolean => published.rows.some((t) => t.schemaname === schema && t.tablename === table)

  const conns = new Set<Conn>()
  const sent: SentChange[] = []
  const state = { joins: 0, refusedUpgrades: 0, dropped: false, refuse: null as string | null }
  const wss = new WebSocketServer({ noServer: true })

  function send (c: Conn, f: Frame): void {
    if (c.ws.readyState !== c.ws.OPEN) return
    c.ws.send(c.vsn === '2.0.0' ? JSON.stringify([f.join_ref, f.ref, f.topic, f.event, f.payload]) : JSON.stringify(f))
  }
  const reply = (c: Conn, f: Frame, status: 'ok' | 'error', response: unknown): void =>
    send(c, { join_ref: f.join_ref, ref: f.ref, topic: f.topic, event: 'phx_reply', payload: { status, response } })

  async function claimsFor (token: string): Promise<Claims | string> {
    try {
      return await db.claimsOf(token)
    } catch (err) {
      const m = (err as Error).message
      return /expired/i.test(m) ? 'Token has expired' : `Invalid token: ${m}`
    }
  }

  async function join (c: Conn, f: Frame, apikey: string): Promise<void> {
    const p = (f.payload ?? {}) as { config?: { postgres_changes?: Array<Record<string, string>> }, access_token?: string }
    if (state.refuse !== null) return reply(c, f, 'error', { reason: state.refuse })
    const claims = await claimsFor(p.access_token ?? apikey)
    if (typeof claims === 'string') return reply(c, f, 'error', { reason: claims })
    const bindings: Binding[] = []
    for (const pc of p.config?.postgres_changes ?? []) {
      const b = { event: pc.event ?? '*', schema: pc.schema ?? 'public', table: pc.table ?? '*', ...(pc.filter ? { filter: pc.filter } : {}) }
      if (b.filter !== undefined && !/^[a-z_][a-z0-9_]*=eq\..+$/.test(b.filter)) return reply(c, f, 'error', { reason: `filter ${b.filter} is not emulated` })
      if (!isPublished(b.schema, b.table)) {
        return reply(c, f, 'error', { reason: `Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [schema: ${b.schema}, table: ${b.table}, filters: []]` })
      }
      bindings.push({ id: bindingId(b), ...b })
    }
    c.channels.set(f.topic, { topic: f.topic, joinRef: f.join_ref ?? f.ref, claims, bindings })
    state.joins++
    reply(c, f, 'ok', { postgres_changes: bindings.map(({ id, event, schema, table, filter }) => ({ id, event, schema, table, ...(filter ? { filter } : {}) })) })
    if (bindings.length) {
      send(c, { join_ref: f.join_ref, ref: null, topic: f.topic, event: 'system', payload: { channel: f.topic.replace(/^realtime:/, ''), extension: 'postgres_changes', message: 'Subscribed to PostgreSQL', status: 'ok' } })
    }
  }

  async function onFrame (c: Conn, f: Frame, apikey: string): Promise<void> {
    if (f.topic === 'phoenix' && f.event === 'heartbeat') return reply(c, f, 'ok', {})
    if (f.event === 'phx_join') return await join(c, f, apikey)
    const ch = c.channels.get(f.topic)
    if (!ch) return reply(c, f, 'error', { reason: 'unmatched topic' })
    if (f.event === 'access_token') {
      const claims = await claimsFor(String((f.payload as { access_token?: unknown } | null)?.access_token ?? ''))
      if (typeof claims === 'string') {
        send(c, { join_ref: ch.joinRef, ref: null, topic: f.topic, event: 'system', payload: { channel: f.topic.replace(/^realtime:/, ''), extension: 'system', message: claims, status: 'error' } })
        c.channels.delete(f.topic)
        return send(c, { join_ref: ch.joinRef, ref: ch.joinRef, topic: f.topic, event: 'phx_close', payload: {} })
      }
      ch.claims = claims
      return
    }
    if (f.event === 'phx_leave') {
      c.channels.delete(f.topic)
      reply(c, f, 'ok', {})
      return send(c, { join_ref: ch.joinRef, ref: ch.joinRef, topic: f.topic, event: 'phx_close', payload: {} })
    }
    reply(c, f, 'error', { reason: `${f.event} is not emulated` })
  }

  // ---- the change feed ---------------------------------------------------------------------------
  const columnsCache = new Map<string, Array<{ name: string, type: string }>>()
  async function columnsOf (schema: string, table: string): Promise<Array<{ name: string, type: string }>> {
    const key = `${schema}.${table}`
    let cols = columnsCache.get(key)
    if (!cols) {
      cols = (await pool.query<{ name: string, type: string }>(
        `select a.attname as name, t.typname as type from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = format('%I.%I', $1::text, $2::text)::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum`, [schema, table])).rows
      columnsCache.set(key, cols)
    }
    return cols
  }
  async function primaryKey (schema: string, table: string): Promise<string[]> {
    const r = await pool.query<{ name: string }>(
      `select a.attname as name from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = format('%I.%I', $1::text, $2::text)::regclass and i.indisprimary`, [schema, table])
    return r.rows.map((x) => x.name)
  }
  async function visible (claims: Claims, schema: string, table: string, pk: string[], record: Record<string, unknown>): Promise<boolean> {
    const where = pk.map((k, i) => `"${k}"::text = $${i + 1}`).join(' and ')
    try {
      return await db.inRole(claims, async (q) => (await q.query(`select 1 from "${schema}"."${table}" where ${where}`, pk.map((k) => String(record[k])))).rows.length > 0)
    } catch {
      return false
    }
  }

  async function deliver (seq: string): Promise<void> {
    const r = await pool.query<{ op: string, schema_name: string, table_name: string, record: Record<string, unknown> | null, old_record: Record<string, unknown> | null, committed_at: string }>(
      `select op, schema_name, table_name, record, old_record,
              to_char(committed_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as committed_at
         from realtime_emu.changes where seq = $1`, [seq])
    const ch = r.rows[0]
    if (!ch) return
    const columns = await columnsOf(ch.schema_name, ch.table_name)
    const pk = await primaryKey(ch.schema_name, ch.table_name)
    const oldKeys = ch.op === 'DELETE' && ch.old_record ? Object.fromEntries(pk.map((k) => [k, ch.old_record![k]])) : {}
    const data = { schema: ch.schema_name, table: ch.table_name, commit_timestamp: ch.committed_at, type: ch.op, columns, errors: null, ...(ch.record ? { record: ch.record } : {}), old_record: oldKeys }
    for (const c of conns) {
      for (const chan of c.channels.values()) {
        const ids = chan.bindings.filter((b) => b.schema === ch.schema_name && (b.table === '*' || b.table === ch.table_name) && (b.event === '*' || b.event === ch.op) &&
          (b.filter === undefined || ch.op === 'DELETE' || (() => { const [col = '', v] = b.filter.split('=eq.'); return String(ch.record?.[col]) === v })())).map((b) => b.id)
        if (ids.length === 0) continue
        if (ch.op !== 'DELETE' && !await visible(chan.claims, ch.schema_name, ch.table_name, pk, ch.record ?? {})) continue
        sent.push({ sub: typeof chan.claims.sub === 'string' ? chan.claims.sub : null, topic: chan.topic, type: ch.op, id: (ch.record ?? ch.old_record)?.id })
        send(c, { join_ref: chan.joinRef, ref: null, topic: chan.topic, event: 'postgres_changes', payload: { ids, data } })
      }
    }
  }

  const listener = new pg.Client({ connectionString: databaseUrl })
  listener.on('error', () => {})
  await listener.connect()
  let queue: Promise<void> = Promise.resolve()
  listener.on('notification', (n) => {
    if (n.channel !== 'realtime_emu' || !n.payload) return
    const seq = n.payload
    // a failed delivery is a bug of the stand-in: loud, so that the test fails on its symptom
    queue = queue.then(() => deliver(seq)).catch((err) => { console.error('realtime stand-in: delivery failed', err) })
  })
  await listener.query('listen realtime_emu')

  return {
    get connections () { return conns.size },
    get joins () { return state.joins },
    get refusedUpgrades () { return state.refusedUpgrades },
    sent,
    drop () {
      state.dropped = true
      for (const c of conns) c.ws.terminate()
    },
    resume () { state.dropped = false },
    refuseJoins (reason) { state.refuse = reason },
    handleUpgrade (req, socket, head) {
      const u = new URL(req.url ?? '/', 'http://localhost')
      const apikey = u.searchParams.get('apikey') ?? ''
      const refuse = (status: number, text: string): void => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ message: text })}`)
      }
      if (u.pathname !== '/realtime/v1/websocket') return refuse(404, 'Not Found')
      if (state.dropped) {
        state.refusedUpgrades++
        return refuse(503, 'Service Unavailable')
      }
      if (apikey !== db.anonKey && apikey !== db.serviceKey) return refuse(401, 'Unauthorized')
      const vsn = u.searchParams.get('vsn') ?? '1.0.0'
      if (vsn !== '1.0.0' && vsn !== '2.0.0') return refuse(400, 'Bad Request')
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c: Conn = { ws, vsn, channels: new Map() }
        conns.add(c)
        ws.on('close', () => conns.delete(c))
        ws.on('error', () => {})
        let inbox: Promise<void> = Promise.resolve()
        ws.on('message', (data, isBinary) => {
          if (isBinary) return // binary frames are broadcast pushes: not emulated
          let f: Frame
          try {
            const raw = JSON.parse(String(data)) as unknown
            f = Array.isArray(raw)
              ? { join_ref: raw[0] ?? null, ref: raw[1] ?? null, topic: String(raw[2]), event: String(raw[3]), payload: raw[4] }
              : raw as Frame
          } catch {
            return ws.close(1003, 'not JSON')
          }
          inbox = inbox.then(() => onFrame(c, f, apikey)).catch(() => {})
        })
      })
    },
    async close () {
      for (const c of conns) c.ws.terminate()
      wss.close()
      await listener.end().catch(() => {})
    }
  }
}
