import { hash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

// Conditional GETs for pollers (GET /workflows, GET /workflows/{id}): the ETag changes whenever
// anything in the answer does (counts and last_* too, which leave the version alone); If-None-Match
// with it answers 304 without a body.
//   GET /workflows/{id}, and GET /workflows on a store without row versions (Supabase): a digest
//   of the answer as sent (the full read is made, then the body dropped).
//   GET /workflows on Postgres/PGlite: a digest of the caller, the query's shape and the page's
//   `id:row_version` list (listPageEtag). Every insert and update writes a new row version (xmin)
//   and a delete takes the row out of the list, so the list changes whenever a row on the page
//   does. While nothing of the caller's changed, the page comes from the list cache
//   (src/services/workflow-list-cache.ts) and so does its ETag.

// One-shot hash (no Hash object): ~25 % cheaper than createHash for a page of summaries.
function digest (payload: string | Buffer): string {
  return hash('sha1', payload, 'base64url').slice(0, 16)
}

/** Weak comparison (RFC 9110 §8.8.3.2): W/ prefixes are ignored; `*` matches any. */
export function noneMatch (header: string | undefined, etag: string): boolean {
  if (!header) return false
  const ours = etag.replace(/^W\//, '')
  return header.split(',').some((raw) => {
    const v = raw.trim()
    return v === '*' || v.replace(/^W\//, '') === ours
  })
}

// Replies whose route already set the final ETag (listPageEtag): onSend leaves it as it is.
const finalEtag = new WeakSet<FastifyReply>()

// An answer kept by the list cache is the same object on every hit: its ETag is computed once.
const etags = new WeakMap<object, string>()

/**
 * GET /workflows' ETag from a page tag (WorkflowService.listAnswer). The user, the limit (a full
 * page with or without a next one can list the same rows) and summaries vs definitions are part
 * of it: another user's empty page, or the other representation, never matches.
 */
export function listPageEtag (reply: FastifyReply, userId: string, q: { limit: number, include?: string | undefined }, answer: { tag: string | null }): string {
  let etag = etags.get(answer)
  if (etag === undefined) {
    etag = `"${digest(`v1|${userId}|${q.limit}|${q.include === 'definition' ? 'definition' : 'summary'}|${answer.tag ?? ''}`)}"`
    etags.set(answer, etag)
  }
  finalEtag.add(reply)
  reply.header('etag', etag)
  return etag
}

/**
 * onSend hook. `prefix` keeps what the route put in its ETag before the digest: GET /workflows/{id}
 * sends `"<version>.<digest>"`, so If-Match (which compares the version) accepts it as well.
 */
export function conditionalGet (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (finalEtag.has(reply)) return reply.statusCode === 304 ? notModified(reply, done) : done(null, payload)
  if (reply.statusCode !== 200 || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) return done(null, payload)
  const prior = reply.getHeader('etag')
  const version = typeof prior === 'string' ? /^"(\d+)"$/.exec(prior)?.[1] : undefined
  const etag = `"${version === undefined ? '' : `${version}.`}${digest(payload)}"`
  reply.header('etag', etag)
  if (noneMatch(request.headers['if-none-match'], etag)) return notModified(reply.code(304), done)
  done(null, payload)
}

function notModified (reply: FastifyReply, done: (err: null, payload: unknown) => void): void {
  reply.removeHeader('content-type')
  done(null, '')
}
