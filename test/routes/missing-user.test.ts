// A valid token whose user has no auth.users row (deleted, or a token of another project): on a
// database with auth.users (a Supabase project's), writing the user's first row trips the foreign
// key. The answer says so: 403 forbidden, not "a conflicting change was made at the same time".
import { randomBytes } from 'node:crypto'
import t from 'tap'
import nock from 'nock'
import { buildTestApp, testUser } from '../helpers/app.ts'
import { assertProblem, injector } from '../helpers/http.ts'
import { expectCreate } from '../helpers/n8n-nock.ts'
import { adminQuery, databaseUrl } from '../helpers/db.ts'
import { migrate } from '../../src/db/migrate.ts'
import { PgDatabase } from '../../src/db/pg-database.ts'
import { MISSING_USER_MESSAGE, sqlProblem } from '../../src/db/errors.ts'

const name = `ws_nouser_${randomBytes(5).toString('hex')}`
await adminQuery(`create database ${name}`)
const db = new PgDatabase({ connectionString: databaseUrl(name), max: 4 })
// auth.users as a Supabase project has it: the migrations then add the foreign keys to it.
await db.query('create schema auth; create table auth.users (id uuid primary key, email text); grant usage on schema auth to anon, authenticated, service_role')
await migrate(db)
nock.disableNetConnect()
const h = await buildTestApp({ db })
const { inject } = injector(h.app)
t.teardown(async () => {
  nock.cleanAll()
  nock.enableNetConnect()
  await h.close()
  await db.close()
  await adminQuery(`drop database if exists ${name} with (force)`)
})

const trigger = { name: 'Webhook', type: 'n8n-nodes-base.webhook', typeVersion: 2, position: [0, 0], parameters: { path: 'x' } }

t.test('the foreign key to auth.users is there (a Supabase-shaped database)', async (t) => {
  const fk = (await db.query("select 1 from pg_constraint where conname = 'mvp_workflows_user_id_fkey'")).rows
  t.equal(fk.length, 1)
})

t.test('POST /workflows with a token of a user who has no auth.users row → 403 saying so; n8n not called', async (t) => {
  const ghost = await testUser()
  const res = await inject({ method: 'POST', url: '/workflows', headers: ghost.auth, payload: { name: 'x', nodes: [trigger] } })
  const body = assertProblem(t, res, 403, 'forbidden')
  t.equal(body.detail, MISSING_USER_MESSAGE)
  t.match(body.detail, /no auth\.users row/)
  t.notMatch(res.body, /conflicting change/)
  const idem = await inject({ method: 'POST', url: '/workflows', headers: { ...ghost.auth, 'idempotency-key': 'k-1' }, payload: { name: 'x', nodes: [trigger] } })
  t.match(assertProblem(t, idem, 403, 'forbidden').detail, /no auth\.users row/, 'with an Idempotency-Key too')
  t.same(nock.pendingMocks(), [])
})

t.test('the same user, once in auth.users, creates normally', async (t) => {
  const u = await testUser()
  await db.query('insert into auth.users (id, email) values ($1, $2)', [u.id, 'real@example.com'])
  const c = expectCreate('n8n-real-user')
  const res = await inject({ method: 'POST', url: '/workflows', headers: u.auth, payload: { name: 'x', nodes: [trigger] } })
  t.equal(res.statusCode, 201, res.body)
  t.ok(c.scope.isDone())
})

t.test('sqlProblem: the auth.users foreign key as pg and as PostgREST report it; other foreign keys stay a conflict', async (t) => {
  const pgErr = { code: '23503', message: 'insert or update on table "mvp_workflows" violates foreign key constraint "mvp_workflows_user_id_fkey"', constraint: 'mvp_workflows_user_id_fkey', detail: 'Key (user_id)=(x) is not present in table "users".' }
  t.match(sqlProblem(pgErr), { code: 'forbidden', message: MISSING_USER_MESSAGE })
  const rest = { code: '23503', message: 'insert or update on table "mvp_workflows" violates foreign key constraint "mvp_workflows_user_id_fkey"', details: 'Key (user_id)=(x) is not present in table "users".', hint: null }
  t.match(sqlProblem(rest), { code: 'forbidden', message: MISSING_USER_MESSAGE })
  const other = { code: '23503', message: 'insert or update on table "workflow_executions" violates foreign key constraint "workflow_executions_workflow_id_fkey"', constraint: 'workflow_executions_workflow_id_fkey', detail: 'Key (workflow_id)=(x) is not present in table "mvp_workflows".' }
  t.match(sqlProblem(other), { code: 'conflict' })
})
