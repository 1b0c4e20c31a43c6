import t from 'tap'
import { Semaphore } from '../../src/lib/semaphore.ts'
import { decodeCursor, encodeCursor } from '../../src/lib/cursor.ts'
import { hasUserTag, n8nName, userTag } from '../../src/lib/user-tag.ts'
import { markerFor, readMarker } from '../../src/lib/marker.ts'
import { isUuid } from '../../src/lib/ids.ts'
import { BatchedLookup } from '../../src/lib/batched-lookup.ts'

function gate (): { promise: Promise<void>, open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

t.test('semaphore: at most `slots` at once, waiters served in order', async (t) => {
  const s = new Semaphore(2)
  const gates = [gate(), gate(), gate()]
  const started: number[] = []
  const runs = gates.map((g, i) => s.run(async () => { started.push(i); await g.promise; return i }))
  await Promise.resolve()
  t.same(started, [0, 1])
  t.equal(s.waiting, 1)
  gates[1]!.open()
  t.equal(await runs[1], 1)
  t.same(started, [0, 1, 2])
  gates[0]!.open()
  gates[2]!.open()
  t.same(await Promise.all(runs), [0, 1, 2])
  t.equal(s.waiting, 0)
})

t.test('semaphore: a limit read at run time (raised: waiters enter on the next release)', async (t) => {
  let limit = 1
  const s = new Semaphore(() => limit)
  const gates = [gate(), gate(), gate()]
  const started: number[] = []
  const runs = gates.map((g, i) => s.run(async () => { started.push(i); await g.promise }))
  await Promise.resolve()
  t.same(started, [0])
  limit = 2
  gates[0]!.open()
  await runs[0]
  t.same(started, [0, 1, 2], 'both waiters entered once a slot was released under the raised limit')
  gates[1]!.open()
  gates[2]!.open()
  await Promise.all(runs)
})

t.test('semaphore: a failing task frees its slot', async (t) => {
  const s = new Semaphore(1)
  await t.rejects(s.run(async () => { throw new Error('boom') }), /boom/)
  t.equal(await s.run(async () => 'next'), 'next')
})

t.test('cursor: round trip; garbage decodes to undefined', async (t) => {
  t.same(decodeCursor(encodeCursor({ s: 42 })), { s: 42 })
  t.same(decodeCursor(encodeCursor(['2026-01-01T00:00:00.000001Z', 'x'])), ['2026-01-01T00:00:00.000001Z', 'x'])
  t.equal(decodeCursor('%%%not-base64'), undefined)
  t.equal(decodeCursor(Buffer.from('{oops').toString('base64url')), undefined)
})

t.test('user tag: first 8 hex digits, lowercase; matched in any case', async (t) => {
  const id = 'ABCDEF01-2345-4678-9abc-def012345678'
  t.equal(userTag(id), '[USR-abcdef01]')
  t.equal(n8nName(id, 'flow'), '[USR-abcdef01] flow')
  t.ok(hasUserTag('[USR-ABCDEF01] flow', id))
  t.notOk(hasUserTag('flow [USR-abcdef01]', id))
})

t.test('marker: written and read back; malformed fields read as null', async (t) => {
  const row = { id: '11111111-1111-4111-8111-111111111111', user_id: '22222222-2222-4222-8222-222222222222' }
  t.same(readMarker(markerFor(row)), { rowId: row.id, userId: row.user_id })
  t.same(readMarker(null), { rowId: null, userId: null })
  t.same(readMarker({ workflow_sync: 'x' }), { rowId: null, userId: null })
  t.same(readMarker({ workflow_sync: { row_id: 7, user_id: row.user_id } }), { rowId: null, userId: row.user_id })
})

t.test('ids: canonical UUIDs only', async (t) => {
  t.ok(isUuid('11111111-1111-4111-8111-111111111111'))
  t.ok(isUuid('ABCDEF01-1111-4111-8111-111111111111'))
  t.notOk(isUuid('11111111111111111111111111111111----'))
  t.notOk(isUuid(42))
})

t.test('batched lookup: callers that ask while a batch is in flight go together in the next one', async (t) => {
  const batches: string[][] = []
  const gates: Array<{ promise: Promise<void>, open(): void }> = []
  const lookup = new BatchedLookup(async (keys) => {
    batches.push(keys)
    const g = gate()
    gates.push(g)
    await g.promise
    return keys.map((k) => `${k}@${batches.length}`)
  })
  const first = lookup.get('a')
  t.same(batches, [['a']], 'idle: the first caller is sent at once')
  const waiting = [lookup.get('b'), lookup.get('a'), lookup.get('c'), lookup.get('b')]
  t.same(batches, [['a']], 'nothing else is sent while a batch is in flight')
  gates[0]!.open()
  t.equal(await first, 'a@1')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(batches, [['a'], ['b', 'a', 'c']], 'the waiting keys go in the next batch, each once')
  gates[1]!.open()
  t.same(await Promise.all(waiting), ['b@2', 'a@2', 'c@2', 'b@2'], 'a caller that asked while batch 1 was out gets batch 2\'s answer')
})

t.test('batched lookup: a failed batch fails its callers only; a short answer is a failure', async (t) => {
  let calls = 0
  const lookup = new BatchedLookup(async (keys: string[]) => {
    calls++
    if (calls === 1) throw new Error('database down')
    if (calls === 2) return keys.slice(1)
    return keys.map((k) => k.toUpperCase())
  })
  await t.rejects(lookup.get('x'), /database down/)
  const two = [lookup.get('y'), lookup.get('z')]
  await t.rejects(two[0]!, /answered 0 values for 1 keys/)
  t.same(await Promise.all([two[1], lookup.get('w')]), ['Z', 'W'], 'the next batches are served')
  const big = new BatchedLookup(async (keys: string[]) => keys.map(() => keys.length), { maxBatch: 2 })
  const g = [big.get('1'), big.get('2'), big.get('3'), big.get('4'), big.get('5')]
  t.same(await Promise.all(g), [1, 2, 2, 2, 2], 'the first alone (idle), then at most maxBatch keys per batch')
})
