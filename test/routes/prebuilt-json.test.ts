// prebuiltJson: kept JSON goes out as it is, checked against the route's schema outside production.
import t from 'tap'
import { z } from 'zod'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { prebuiltJson } from '../../src/routes/prebuilt-json.ts'

const schema = z.object({ id: z.uuid() })
const appIn = (NODE_ENV: string) => ({ config: { NODE_ENV } }) as unknown as FastifyInstance
function fakeReply (): { reply: FastifyReply, sent: unknown[], types: string[] } {
  const sent: unknown[] = []
  const types: string[] = []
  const reply = {
    type (v: string) { types.push(v); return reply },
    send (v: unknown) { sent.push(v); return reply }
  } as unknown as FastifyReply
  return { reply, sent, types }
}

t.test('outside production: a body that breaks the schema throws, nothing is sent', async (t) => {
  const send = prebuiltJson(appIn('test'), schema)
  const bad = fakeReply()
  t.throws(() => send(bad.reply, '{"id":"not-a-uuid"}'))
  t.same(bad.sent, [])
  const good = fakeReply()
  const json = Buffer.from('{"id":"38a7ddcb-22f2-4b6c-982d-c2d23df78380"}')
  send(good.reply, json)
  t.same(good.sent, [json], 'the very bytes')
  t.same(good.types, ['application/json; charset=utf-8'])
})

t.test('in production: sent as it is, unchecked', async (t) => {
  const send = prebuiltJson(appIn('production'), schema)
  const r = fakeReply()
  send(r.reply, '{"id":"not-a-uuid"}')
  t.same(r.sent, ['{"id":"not-a-uuid"}'])
})
