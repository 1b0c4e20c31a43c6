// Proves, against a REAL n8n and its raw public API, the assumptions workflow-sync relies on.
// One n8n per version in N8N_VERSIONS (comma/space separated; default 1.123.5 and 2.30.8),
// booted one after the other on 127.0.0.1:5679, 5680, ...
//
//   scripts/install-n8n.sh
//   PATH=/work/main/node_modules/.bin:$PATH tap --timeout=900 test-e2e/n8n-facts.test.ts
//
// The observed facts are printed as TAP comments and written to
// <tmpdir>/workflow-sync-n8n-facts-<version>.json.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_N8N_VERSIONS, FINAL, n8nApi, startN8n, triggerWebhook, waitFor } from './n8n-harness.ts'
import type { N8nApi } from './n8n-harness.ts'

const versions = (process.env.N8N_VERSIONS ?? '').split(/[\s,]+/).filter(Boolean)
const VERSIONS = versions.length ? versions : DEFAULT_N8N_VERSIONS
const FIRST_PORT = Number(process.env.N8N_FIRST_PORT ?? 5679)

t.setTimeout(Math.max(600_000, VERSIONS.length * 300_000))

type Json = any

function webhookNode (path: string, webhookId = randomUUID()): Json {
  return {
    id: randomUUID(),
    name: 'Webhook',
    type: 'n8n-nodes-base.webhook',
    typeVersion: 2,
    position: [0, 0],
    webhookId,
    parameters: { httpMethod: 'POST', path, responseMode: 'onReceived' },
  }
}

function after (from: string, node: Json): Json {
  return { [from]: { main: [[{ node: node.name, type: 'main', index: 0 }]] } }
}

/** Webhook → (optional) next node. */
function webhookWorkflow (name: string, path: string, next?: Json, extra: Json = {}): Json {
  const nodes = [webhookNode(path)]
  if (next) nodes.push({ id: randomUUID(), position: [250, 0], ...next })
  return {
    name,
    nodes,
    connections: next ? after('Webhook', next) : {},
    settings: { executionOrder: 'v1' },
    ...extra,
  }
}

const stopAndError = {
  name: 'Fail',
  type: 'n8n-nodes-base.stopAndError',
  typeVersion: 1,
  parameters: { errorMessage: 'workflow-sync e2e: deliberate failure' },
}

const waitFiveSeconds = {
  name: 'Wait',
  type: 'n8n-nodes-base.wait',
  typeVersion: 1.1,
  parameters: { resume: 'timeInterval', amount: 5, unit: 'seconds' },
}

async function executionsOf (api: N8nApi, workflowId: string, query: Record<string, string> = {}): Promise<Json[]> {
  const r = await api.get('/executions', { workflowId, ...query })
  if (r.status !== 200) throw new Error(`GET /executions → ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.data
}

VERSIONS.forEach((version, i) => {
  const port = FIRST_PORT + i
  t.test(`n8n ${version} (127.0.0.1:${port})`, async (t) => {
    const facts: Record<string, unknown> = { version }
    const n8n = await startN8n({ version, port })
    t.teardown(async () => {
      await n8n.stop()
      const file = join(tmpdir(), `workflow-sync-n8n-facts-${version}.json`)
      writeFileSync(file, JSON.stringify(facts, null, 2) + '\n')
      t.comment(`facts for n8n ${version} (also in ${file}):\n${JSON.stringify(facts, null, 2)}`)
    })
    const api = n8nApi(n8n.apiUrl, n8n.apiKey)
    const major = Number(version.split('.')[0])

    t.test('harness: API key works, unauthenticated calls are refused', async (t) => {
      const ok = await api.get('/workflows')
      t.equal(ok.status, 200)
      t.same(ok.body.data, [])
      const noKey = await fetch(`${n8n.apiUrl}/workflows`)
      t.equal(noKey.status, 401)
      const badKey = await n8nApi(n8n.apiUrl, 'nope').get('/workflows')
      t.equal(badKey.status, 401)
      facts.unauthorized = { noKey: await noKey.json(), badKey: badKey.body }
    })

    t.test('(a) staticData marker survives create, list, activate, run, PUT, deactivate', async (t) => {
      const marker = { workflow_sync: { row_id: randomUUID(), user_id: randomUUID() } }
      const path = `facts-marker-${randomUUID()}`
      const body = webhookWorkflow('[USR-facts] marker', path, undefined, { staticData: marker })
      const created = await api.post('/workflows', body)
      t.equal(created.status, 200, 'create with staticData', { body: created.body })
      const id: string = created.body.id
      t.type(id, 'string')
      t.equal(created.body.active, false, 'a new workflow is inactive')
      t.same(created.body.staticData, marker, 'create answer carries the marker')
      facts.workflowIdExample = id
      facts.createAnswerKeys = Object.keys(created.body).sort()

      const markerOf = async (): Promise<unknown> => (await api.get(`/workflows/${id}`)).body.staticData
      t.same(await markerOf(), marker, 'GET /workflows/{id} returns the marker')

      const list = await api.get('/workflows')
      const listed = list.body.data.find((w: Json) => w.id === id)
      t.ok(listed, 'listed')
      t.same(listed.staticData, marker, 'GET /workflows (list) returns the marker')

      const act = await api.post(`/workflows/${id}/activate`)
      t.equal(act.status, 200, 'activate', { body: act.body })
      t.equal(act.body.active, true)
      t.same(act.body.staticData, marker, 'activate answer carries the marker')
      t.same(await markerOf(), marker, 'marker after activate')
      const again = await api.post(`/workflows/${id}/activate`)
      t.equal(again.status, 200, 'activate is idempotent')

      const hook = await triggerWebhook(n8n.baseUrl, path, { hello: 'world' })
      t.equal(hook.status, 200, 'webhook', { body: hook.body })
      facts.webhookOnReceivedAnswer = hook.body
      const [run] = await waitFor('the marker workflow run', async () => {
        const ex = await executionsOf(api, id)
        return ex.length === 1 && ex[0].status === 'success' && ex
      })
      t.equal(run.mode, 'webhook')
      t.same(await markerOf(), marker, 'marker after a webhook run')

      const { nodes, connections, settings } = (await api.get(`/workflows/${id}`)).body
      const marker2 = { workflow_sync: { row_id: randomUUID(), user_id: marker.workflow_sync.user_id } }
      const putWith = await api.put(`/workflows/${id}`, { name: '[USR-facts] marker (put 1)', nodes, connections, settings, staticData: marker2 })
      t.equal(putWith.status, 200, 'PUT with staticData', { body: putWith.body })
      const afterPutWith = await api.get(`/workflows/${id}`)
      t.same(afterPutWith.body.staticData, marker2, 'PUT with staticData replaces the marker')
      facts.activeAfterPut = afterPutWith.body.active

      const putWithout = await api.put(`/workflows/${id}`, { name: '[USR-facts] marker (put 2)', nodes, connections, settings })
      t.equal(putWithout.status, 200, 'PUT without staticData', { body: putWithout.body })
      const afterPutWithout = await api.get(`/workflows/${id}`)
      facts.markerAfterPutWithoutStaticData = afterPutWithout.body.staticData ?? null
      facts.putWithoutStaticDataKeepsMarker = JSON.stringify(afterPutWithout.body.staticData) === JSON.stringify(marker2)
      t.same(afterPutWithout.body.staticData, marker2, 'PUT without staticData keeps the stored marker')
      t.equal(afterPutWithout.body.name, '[USR-facts] marker (put 2)')

      // webhook still served after the PUTs (re-activated / republished automatically)
      const hook2 = await triggerWebhook(n8n.baseUrl, path, { after: 'put' })
      facts.webhookAfterPutStatus = hook2.status
      t.equal(hook2.status, 200, 'webhook still registered after PUT of an active workflow')
      await waitFor('second run', async () => {
        const ex = await executionsOf(api, id)
        return ex.length === 2 && ex.every((e: Json) => e.status === 'success')
      })
      t.same(await markerOf(), marker2, 'marker after a run following the PUTs')

      const deact = await api.post(`/workflows/${id}/deactivate`)
      t.equal(deact.status, 200, 'deactivate', { body: deact.body })
      t.equal(deact.body.active, false)
      t.same(await markerOf(), marker2, 'marker after deactivate')
      const hook3 = await triggerWebhook(n8n.baseUrl, path, {})
      t.equal(hook3.status, 404, 'webhook gone once deactivated')
      facts.webhookWhenInactive = { status: hook3.status, body: hook3.body }

      // explicit null / {} in PUT
      const putEmpty = await api.put(`/workflows/${id}`, { name: '[USR-facts] marker (put 3)', nodes, connections, settings, staticData: {} })
      facts.putStaticDataEmptyObject = { status: putEmpty.status, staticDataAfter: (await api.get(`/workflows/${id}`)).body.staticData ?? null }
      const putNull = await api.put(`/workflows/${id}`, { name: '[USR-facts] marker (put 4)', nodes, connections, settings, staticData: null })
      facts.putStaticDataNull = { status: putNull.status, body: putNull.status === 200 ? undefined : putNull.body, staticDataAfter: (await api.get(`/workflows/${id}`)).body.staticData ?? null }
    })

    t.test('(b) GET /workflows?name= is a LIKE %name% substring match, not exact', async (t) => {
      // n8n: `name: Like('%' + name.trim() + '%')` (1.123 and 2.30). `%` and `_` are NOT escaped,
      // and case sensitivity is the database's: SQLite LIKE (used here) ignores ASCII case,
      // Postgres LIKE does not. Callers must compare names exactly themselves.
      const names = ['[USR-abcd1234] foo', '[USR-abcd1234] foobar', '[usr-abcd1234] FOO', '[USR-abcd1234] fxo', '[USR-ffff0000] foo']
      for (const name of names) {
        const r = await api.post('/workflows', { name, nodes: [], connections: {}, settings: {} })
        t.equal(r.status, 200, `create ${name}`, { body: r.body })
      }
      const q = async (name: string): Promise<string[]> => {
        const r = await api.get('/workflows', { name })
        t.equal(r.status, 200, `GET /workflows?name=${name}`, { body: r.body })
        return r.body.data.map((w: Json) => w.name).sort()
      }
      const exact = await q('[USR-abcd1234] foo')
      const prefix = await q('[USR-abcd1234]')
      const inner = await q('abcd1234] fo')
      const underscore = await q('[USR-abcd1234] f_o')
      const padded = await q('  [USR-abcd1234] foobar  ')
      facts.nameFilter = {
        implementation: "Like('%' + name.trim() + '%'), wildcards not escaped, case per DB (SQLite here)",
        'name=[USR-abcd1234] foo': exact,
        'name=[USR-abcd1234]': prefix,
        'name=abcd1234] fo': inner,
        'name=[USR-abcd1234] f_o': underscore,
        'name="  [USR-abcd1234] foobar  "': padded,
      }
      const sortedNames = (...n: string[]): string[] => n.sort()
      t.same(exact, sortedNames('[USR-abcd1234] foo', '[USR-abcd1234] foobar', '[usr-abcd1234] FOO'),
        'substring match: foobar is returned too (and, on SQLite, the other-case name)')
      t.same(prefix, sortedNames('[USR-abcd1234] foo', '[USR-abcd1234] foobar', '[usr-abcd1234] FOO', '[USR-abcd1234] fxo'), 'prefix query lists every name containing it')
      t.same(inner, sortedNames('[USR-abcd1234] foo', '[USR-abcd1234] foobar', '[usr-abcd1234] FOO'), 'matches in the middle of a name')
      t.same(underscore, sortedNames('[USR-abcd1234] foo', '[USR-abcd1234] foobar', '[usr-abcd1234] FOO', '[USR-abcd1234] fxo'), '_ is a LIKE wildcard (not escaped)')
      t.same(padded, ['[USR-abcd1234] foobar'], 'the query value is trimmed')
      t.notOk(exact.includes('[USR-ffff0000] foo'), 'other prefixes are not matched')
    })

    t.test('(c) activate without a trigger node → 400', async (t) => {
      const r = await api.post('/workflows', {
        name: '[USR-facts] no trigger',
        nodes: [{ id: randomUUID(), name: 'No Operation, do nothing', type: 'n8n-nodes-base.noOp', typeVersion: 1, position: [0, 0], parameters: {} }],
        connections: {},
        settings: {},
      })
      t.equal(r.status, 200)
      const act = await api.post(`/workflows/${r.body.id}/activate`)
      facts.activateWithoutTrigger = { status: act.status, body: act.body }
      t.equal(act.status, 400)
      t.match(act.body.message, /no node to start the workflow|trigger/i)
      const empty = await api.post('/workflows', { name: '[USR-facts] empty', nodes: [], connections: {}, settings: {} })
      const actEmpty = await api.post(`/workflows/${empty.body.id}/activate`)
      facts.activateEmptyWorkflow = { status: actEmpty.status, body: actEmpty.body }
      t.equal(actEmpty.status, 400)
      const still = await api.get(`/workflows/${r.body.id}`)
      t.equal(still.body.active, false, 'stays inactive')
    })

    t.test('(d) executions: webhook runs, errors, running ones hidden', async (t) => {
      const path = `facts-ok-${randomUUID()}`
      const ok = await api.post('/workflows', webhookWorkflow('[USR-facts] ok', path))
      t.equal(ok.status, 200)
      t.equal((await api.post(`/workflows/${ok.body.id}/activate`)).status, 200)
      for (let k = 0; k < 3; k++) {
        const r = await triggerWebhook(n8n.baseUrl, path, { k })
        t.equal(r.status, 200)
      }
      const seenOk = new Set<string>()
      const ex = await waitFor('3 successful executions', async () => {
        const list = await executionsOf(api, ok.body.id)
        for (const e of list) seenOk.add(e.status)
        return list.length === 3 && list.every((e: Json) => FINAL.has(e.status)) && list
      }, 20_000, 20)
      facts.statusesSeenInDefaultListForOkRuns = [...seenOk]
      t.ok(ex.every((e: Json) => e.status === 'success'), 'all 3 succeeded')
      t.equal(ex.length, 3)
      for (const e of ex) {
        t.equal(e.workflowId, ok.body.id)
        t.equal(e.mode, 'webhook')
        t.equal(e.finished, true)
        t.type(e.id, 'string')
        t.match(e.id, /^\d+$/, 'execution ids are numeric strings')
      }
      const ids = ex.map((e: Json) => Number(e.id))
      t.same(ids, [...ids].sort((a, b) => b - a), 'newest first')
      facts.executionItemExample = ex[0]
      facts.executionIdType = `${typeof ex[0].id} ${JSON.stringify(ex[0].id)}`
      const one = await api.get(`/executions/${ex[0].id}`)
      t.equal(one.status, 200)
      t.equal(one.body.id, ex[0].id)
      const unknownWf = await api.get('/executions', { workflowId: 'doesNotExist123' })
      facts.executionsOfUnknownWorkflow = { status: unknownWf.status, count: unknownWf.body?.data?.length }
      t.equal(unknownWf.status, 200)
      t.same(unknownWf.body.data, [])

      // failing run
      const failPath = `facts-fail-${randomUUID()}`
      const fail = await api.post('/workflows', webhookWorkflow('[USR-facts] fail', failPath, stopAndError))
      t.equal(fail.status, 200, 'create failing workflow', { body: fail.body })
      t.equal((await api.post(`/workflows/${fail.body.id}/activate`)).status, 200)
      const fr = await triggerWebhook(n8n.baseUrl, failPath, {})
      t.equal(fr.status, 200, 'onReceived answers 200 even though the run fails')
      const seenFail = new Set<string>()
      const [failed] = await waitFor('the failed execution to reach a final status', async () => {
        const list = await executionsOf(api, fail.body.id)
        for (const e of list) seenFail.add(e.status)
        return list.length === 1 && FINAL.has(list[0].status) && list
      }, 20_000, 20)
      facts.failedExecution = failed
      facts.statusesSeenInDefaultListForFailingRun = [...seenFail]
      t.equal(failed.status, 'error')
      t.equal(failed.finished, false, 'an errored execution has finished: false')
      const errOnly = await executionsOf(api, fail.body.id, { status: 'error' })
      t.equal(errOnly.length, 1, 'status=error filter finds it')
      t.equal((await executionsOf(api, fail.body.id, { status: 'success' })).length, 0)

      // running run: hidden from the default list until it finishes
      const slowPath = `facts-slow-${randomUUID()}`
      const slow = await api.post('/workflows', webhookWorkflow('[USR-facts] slow', slowPath, waitFiveSeconds))
      t.equal(slow.status, 200, 'create slow workflow', { body: slow.body })
      t.equal((await api.post(`/workflows/${slow.body.id}/activate`)).status, 200)
      const started = Date.now()
      const sr = await triggerWebhook(n8n.baseUrl, slowPath, {})
      t.equal(sr.status, 200)
      const running = await waitFor('the running execution (status=running)', async () => {
        const r = await api.get('/executions', { workflowId: slow.body.id, status: 'running' })
        facts.statusRunningFilter = { status: r.status, body: r.status === 200 ? undefined : r.body }
        return r.status === 200 && r.body.data.length === 1 && r.body.data
      }, 4000)
      const whileRunning = await executionsOf(api, slow.body.id)
      const whileRunningAll = await api.get('/executions')
      const elapsed = Date.now() - started
      t.ok(elapsed < 5000, `checked while still running (${elapsed} ms)`)
      facts.runningExecution = running[0]
      facts.defaultListWhileRunning = whileRunning
      t.same(whileRunning, [], 'a running execution is NOT in the default list (workflowId filter)')
      t.notOk(whileRunningAll.body.data.some((e: Json) => e.id === running[0].id), 'nor in the unfiltered list')
      t.equal(running[0].status, 'running')
      const byId = await api.get(`/executions/${running[0].id}`)
      facts.getRunningExecutionById = { status: byId.status, execStatus: byId.body?.status, finished: byId.body?.finished }
      const doneList = await waitFor('the slow execution to finish', async () => {
        const list = await executionsOf(api, slow.body.id)
        return list.length === 1 && list
      }, 20_000)
      facts.slowRunVisibleAfterMs = Date.now() - started
      t.equal(doneList[0].id, running[0].id)
      t.equal(doneList[0].status, 'success')
      t.ok(Date.now() - started >= 4500, 'appears only after the wait')
    })

    t.test('(d2) under a burst, the default list can briefly show non-final executions', async (t) => {
      // "running executions are hidden" is best effort: n8n excludes the ids in its in-memory
      // active list when the query starts, so rows created/started around it (status `new`, with
      // startedAt null, or `running`) do show up. Recorded, not asserted (it is a race); what is
      // asserted is that every execution ends final and that the ids are unique.
      const path = `facts-burst-${randomUUID()}`
      const w = await api.post('/workflows', webhookWorkflow('[USR-facts] burst', path, stopAndError))
      t.equal((await api.post(`/workflows/${w.body.id}/activate`)).status, 200)
      const seen: Record<string, number> = {}
      const poll = { on: true }
      const poller = (async () => {
        while (poll.on) {
          for (const e of await executionsOf(api, w.body.id, { limit: '250' })) {
            const k = `${e.status}${e.startedAt ? '' : ' (startedAt null)'}`
            seen[k] = (seen[k] ?? 0) + 1
          }
        }
      })()
      const N = 30
      for (let k = 0; k < N / 10; k++) {
        const rs = await Promise.all(Array.from({ length: 10 }, () => triggerWebhook(n8n.baseUrl, path, { k })))
        t.ok(rs.every((r) => r.status === 200), 'burst webhooks accepted')
      }
      const final = await waitFor(`${N} final executions`, async () => {
        const list = await executionsOf(api, w.body.id, { limit: '250' })
        return list.length === N && list.every((e: Json) => FINAL.has(e.status)) && list
      }, 60_000)
      poll.on = false
      await poller
      facts.burstStatusesSeenInDefaultList = seen
      t.comment(`statuses seen in the default list during a burst of ${N}: ${JSON.stringify(seen)}`)
      t.ok(final.every((e: Json) => e.status === 'error'))
      t.equal(new Set(final.map((e: Json) => e.id)).size, N, 'unique ids')
    })

    t.test('(e) DELETE workflow, then GET → 404', async (t) => {
      const path = `facts-del-${randomUUID()}`
      const w = await api.post('/workflows', webhookWorkflow('[USR-facts] delete me', path))
      const id = w.body.id
      t.equal((await api.post(`/workflows/${id}/activate`)).status, 200)
      t.equal((await triggerWebhook(n8n.baseUrl, path, {})).status, 200)
      await waitFor('a run', async () => (await executionsOf(api, id)).length === 1)
      const del = await api.delete(`/workflows/${id}`)
      t.equal(del.status, 200, 'DELETE', { body: del.body })
      t.equal(del.body.id, id, 'DELETE answers the deleted workflow')
      const get = await api.get(`/workflows/${id}`)
      facts.getDeletedWorkflow = { status: get.status, body: get.body }
      t.equal(get.status, 404)
      t.same(get.body, { message: 'Not Found' })
      const del2 = await api.delete(`/workflows/${id}`)
      facts.deleteTwice = { status: del2.status, body: del2.body }
      t.equal(del2.status, 404)
      const gone = await waitFor('executions of the deleted workflow to go', async () => {
        const list = await executionsOf(api, id)
        return list.length === 0 && list
      }, 10_000).catch(() => undefined)
      facts.executionsDeletedWithWorkflow = gone !== undefined
      t.ok(gone, 'its executions are deleted too')
      t.equal((await triggerWebhook(n8n.baseUrl, path, {})).status, 404, 'webhook gone')
    })

    facts.major = major
  })
})
