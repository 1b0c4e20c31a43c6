// The list cache on its own: entries per key and stamp, bounds, shared reads, failures.
// (Its use by GET /workflows, against a real database: test/routes/workflow-list-cache.test.ts.)
import t from 'tap'
import { WorkflowListCache } from '../../src/services/workflow-list-cache.ts'

const answer = (text: string) => ({ json: Buffer.from(text), tag: `tag:${text}` })

t.test('an entry is served under its own stamp only; another stamp drops it', async (t) => {
  const c = new WorkflowListCache({ maxBytes: 1000 })
  let reads = 0
  const read = (text: string) => async () => { reads++; return answer(text) }
  t.equal((await c.load('k', '1', read('one'))).json.toString(), 'one')
  t.equal((await c.load('k', '1', read('other'))).json.toString(), 'one', 'same stamp: kept')
  t.equal(reads, 1)
  t.equal((await c.load('k', '2', read('two'))).json.toString(), 'two', 'the stamp moved: read again')
  t.equal(c.get('k', '1'), undefined, 'the older stamp does not bring the old answer back')
  t.equal(c.get('k', '2'), undefined, 'and a mismatch dropped the entry')
  t.match(c.stats(), { entries: 0, bytes: 0, hits: 1 })
})

t.test('bounds: bytes and entries, oldest first; an answer over a tenth of the bytes is not kept', async (t) => {
  const c = new WorkflowListCache({ maxBytes: 100, maxEntries: 3 })
  for (const k of ['a', 'b', 'c']) await c.load(k, '1', async () => answer('x'.repeat(10)))
  t.match(c.stats(), { entries: 3, bytes: 30 })
  t.ok(c.get('a', '1'), 'a is now the youngest')
  await c.load('d', '1', async () => answer('y'.repeat(10)))
  t.equal(c.stats().entries, 3, 'at most maxEntries')
  t.equal(c.get('b', '1'), undefined, 'the least recently used went')
  t.ok(c.get('a', '1'))
  await c.load('big', '1', async () => answer('z'.repeat(11)))
  t.equal(c.get('big', '1'), undefined, 'too big to keep')
  const off = new WorkflowListCache({ maxBytes: 0 })
  t.equal(off.enabled, false)
  await off.load('k', '1', async () => answer('x'))
  t.equal(off.stats().entries, 0, 'off: nothing kept')
})

t.test('misses under the same stamp share one read; another stamp reads for itself; a failure is not kept', async (t) => {
  const c = new WorkflowListCache({ maxBytes: 1000 })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let reads = 0
  const slow = async () => { const n = ++reads; await gate; return answer(`read ${n}`) }
  const same = [c.load('k', '5', slow), c.load('k', '5', slow), c.load('k', '5', slow)]
  const newer = c.load('k', '6', slow)
  t.equal(reads, 2, 'one read for stamp 5, one for stamp 6')
  release()
  const got = await Promise.all(same)
  t.same(got.map((a) => a.json.toString()), ['read 1', 'read 1', 'read 1'])
  t.equal((await newer).json.toString(), 'read 2')
  t.equal(c.stats().shared, 2)

  await t.rejects(c.load('f', '1', async () => { throw new Error('database down') }), /database down/)
  t.equal((await c.load('f', '1', async () => answer('after'))).json.toString(), 'after', 'the next request reads again')
})
