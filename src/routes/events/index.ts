import { z } from 'zod'
import type { FastifyInstance } from 'fastify'
import type { OutgoingHttpHeaders } from 'node:http'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { problems } from '../../schemas/problem.ts'
import { AppError } from '../../errors.ts'

const cursor = z.string().regex(/^\d{0,15}$/, 'must be an event id (digits)')

const description = [
  'Server-Sent Events of the caller\'s own workflow changes, as they happen on any replica or by SQL (Postgres LISTEN/NOTIFY from a table trigger).',
  '',
  'Swagger UI cannot show a stream: "Try it out" waits for an answer that never ends. Watch it with curl instead (`-N` turns off buffering):',
  '',
  '    curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/events',
  '',
  'Read it with `fetch` and a stream reader (a browser `EventSource` cannot send the `Authorization` header); never put a token in the URL.',
  '',
  'Events (`data` is one line of JSON):',
  '- `workflow.insert`, `workflow.update`: `data` is the workflow (the `Workflow` schema), as read when the event is delivered: never older than the change, and the last event of a workflow always carries its current state. An insert or update whose row was deleted before it could be read is skipped; its `workflow.delete` follows.',
  '- `workflow.delete`: `data` is `{"id"}`.',
  '- `ready` (first event without a cursor): `{"last_event_id"}`, the position the stream starts from.',
  '- `reset`: the events since your cursor cannot be replayed (older than the 24 h retention, more than 1000 of them, or an id this server does not know): reload with `GET /workflows`, then apply the events that follow.',
  '- final events, after which the server closes the stream: `overflow` (the client read too slowly: its backlog was dropped), `shutdown` (the server is stopping), `reauthenticate` (the access token expired). Reconnect (with a fresh token for `reauthenticate`) and `Last-Event-ID`.',
  '',
  'Every event but the final ones has an `id:`, its position in the event log. Reconnect with header `Last-Event-ID: <id>` (or `?since=<id>`; the header wins) to receive exactly the events you missed, then live ones, without gap or duplicate. A comment `: ping` is sent every 15 s.',
  '',
  'Supabase mode (SUPABASE_URL + SUPABASE_ANON_KEY without DATABASE_URL) has no database session to LISTEN on: this route answers 503 `database_unavailable` there; subscribe to Supabase Realtime (`postgres_changes` on `public.mvp_workflows`) instead.',
  '',
  'Bounds: at most 5 open streams per user on one server (the next one answers 429 with `Retry-After`); a client that does not read gets at most 1000 events (4 MiB) queued before the stream ends with `overflow`.'
].join('\n')

/** GET /events in Supabase mode: no LISTEN without a database session; Realtime does this job. */
export const SUPABASE_MODE_EVENTS = 'GET /events is not available in Supabase mode (no database session for LISTEN/NOTIFY): subscribe to Supabase Realtime instead (postgres_changes on the workflows table, which is in the supabase_realtime publication; RLS limits each user to their own rows); see the README'

export default async function eventRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ZodTypeProvider>()

  app.get('/events', {
    onRequest: app.authenticate,
    schema: {
      tags: ['events'],
      operationId: 'streamEvents',
      summary: 'Live changes of the caller\'s workflows (Server-Sent Events)',
      description,
      security: [{ bearerAuth: [] }],
      headers: z.object({
        'last-event-id': cursor.optional().describe('The id of the last event received: the stream replays what came after it')
      }),
      querystring: z.object({
        since: cursor.optional().describe('Same as Last-Event-ID, for clients that cannot set the header (the header wins)')
      }),
      response: {
        200: {
          description: 'An endless `text/event-stream` (see the operation description for the events)',
          content: {
            'text/event-stream': {
              schema: z.string().describe('id: 42\\nevent: workflow.update\\ndata: {"id":"…","user_id":"…",…}\\n\\n')
            }
          }
        },
        ...problems(400, 401, 403, 429, 500, 503)
      }
    }
  }, async (request, reply) => {
    if (app.store.kind === 'supabase') throw new AppError('database_unavailable', SUPABASE_MODE_EVENTS)
    const scope = request.scope
    const user = request.user
    if (!user || scope?.kind !== 'user') throw new AppError('forbidden', 'A user access token is required')
    const raw = request.headers['last-event-id'] || request.query.since
    const from = raw ? Number(raw) : null

    // Registered before the log is read: nothing that happens from now on can be missed.
    const stream = app.events.open({ userId: user.userId, claims: scope.claims, expiresAt: user.expiresAt * 1000 })
    let start
    try {
      start = await stream.begin(from)
    } catch (err) {
      stream.close()
      throw err
    }
    if (stream.isClosed) {
      throw new AppError('database_unavailable', 'The server is shutting down; reconnect', { headers: { 'retry-after': '1' } })
    }

    reply.hijack()
    const res = reply.raw
    if (res.destroyed || request.raw.destroyed) {
      stream.close()
      return reply
    }
    // Hijacked: the headers set by hooks (x-request-id, CORS, rate limit) are written here.
    const headers: OutgoingHttpHeaders = {}
    for (const [k, v] of Object.entries(reply.getHeaders())) {
      if (v !== undefined) headers[k] = v
    }
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no'
    })
    stream.attach(res, start)
    return reply
  })
}
