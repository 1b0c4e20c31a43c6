// The auth fallback: an HS256 token while no secret is configured is verified by Supabase Auth
// (`auth.getUser(token)` = GET /auth/v1/user), cached until its exp (bounded), with the usual
// role/aud/iss checks on its claims and failures mapped to invalid_token / token_expired / 503.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import nock from 'nock'
import { AppError } from '../../src/errors.ts'
import { supabaseUserCheck } from '../../src/services/supabase-auth.ts'
import { TokenVerifier } from '../../src/services/token-verifier.ts'
import { mintUserToken, nowSeconds, TEST_JWT_SECRET } from '../helpers/tokens.ts'

nock.disableNetConnect()
t.teardown(() => {
  nock.cleanAll()
  nock.enableNetConnect()
})
t.afterEach(() => { nock.cleanAll() })

const URL_ = 'http://project-auth.test'
const ANON = 'anon-key-for-auth-tests'
const issuer = `${URL_}/auth/v1`

interface Seen { authorization: string | undefined, apikey: string | undefined }

/** GET /auth/v1/user answering like GoTrue; every request's headers are kept. */
function authServer (answer: (token: string) => [number, unknown], seen: Seen[] = []): Seen[] {
  nock(URL_).persist().get('/auth/v1/user').reply(async (req: unknown) => {
    const r = req as Request
    const authorization = r.headers.get('authorization') ?? undefined
    seen.push({ authorization, apikey: r.headers.get('apikey') ?? undefined })
    const [status, body] = answer(authorization?.replace(/^Bearer /, '') ?? '')
    return [status, JSON.stringify(body), { 'content-type': 'application/json' }]
  })
  return seen
}

function verifier (opts: { now?: () => number, ttlMs?: number } = {}): TokenVerifier {
  return new TokenVerifier({
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    issuer,
    remoteVerify: supabaseUserCheck({ url: URL_, anonKey: ANON, ...(opts.now ? { now: opts.now } : {}) }),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.ttlMs !== undefined ? { remoteCacheTtlMs: opts.ttlMs } : {})
  })
}

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof AppError ? `${err.code}/${err.status}` : `other: ${(err as Error).message}`
  }
}

const gotrueUser = (id: string) => [200, { id, aud: 'authenticated', role: 'authenticated', email: 'u@example.com', app_metadata: {}, user_metadata: {}, created_at: new Date(0).toISOString() }] as [number, unknown]

t.test('a valid token: asked once, with the anon key and the token; then cached', async (t) => {
  const id = randomUUID()
  const token = await mintUserToken({ sub: id, iss: issuer, secret: 'a-secret-this-service-does-not-know-0123456789' })
  const seen = authServer(() => gotrueUser(id))
  const v = verifier()
  const u = await v.verifyUser(token)
  t.equal(u.userId, id)
  t.equal(u.role, 'authenticated')
  t.same(seen, [{ authorization: `Bearer ${token}`, apikey: ANON }])
  await v.verifyUser(token)
  await v.verify(token)
  t.equal(seen.length, 1, 'cached')
  t.match(v.stats, { remoteVerifications: 1, cacheHits: 2 })
})

t.test('the cache is bounded in time (remoteCacheTtlMs) as well as by exp', async (t) => {
  let now = Date.now()
  const id = randomUUID()
  const token = await mintUserToken({ sub: id, iss: issuer, exp: nowSeconds() + 3600 })
  const seen = authServer(() => gotrueUser(id))
  const v = verifier({ now: () => now, ttlMs: 60_000 })
  await v.verifyUser(token)
  now += 59_000
  await v.verifyUser(token)
  t.equal(seen.length, 1)
  now += 2000
  await v.verifyUser(token)
  t.equal(seen.length, 2, 'asked again after the TTL')
})

t.test('failures: expired (without asking), refused, wrong user, provider down', async (t) => {
  const id = randomUUID()
  const seen = authServer((token) => {
    if (token.endsWith('x')) return [500, { code: 500, error_code: 'unexpected_failure', msg: 'boom' }]
    return [403, { code: 403, error_code: 'bad_jwt', msg: 'invalid JWT: unable to parse or verify signature, signature is invalid' }]
  })
  const v = verifier()
  const expired = await mintUserToken({ sub: id, iss: issuer, exp: nowSeconds() - 60 })
  t.equal(await code(v.verifyUser(expired)), 'token_expired/401')
  t.equal(seen.length, 0, 'an expired token is refused locally')
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer }))), 'invalid_token/401', 'GoTrue 403 bad_jwt')
  t.equal(await code(v.verifyUser(`${await mintUserToken({ sub: id, iss: issuer })}x`)), 'internal/503', 'GoTrue 500: the provider is down (503)')
  t.equal(await code(v.verifyUser('not.a.jwt')), 'invalid_token/401')
  t.equal(v.stats.cacheSize, 0, 'failures are not cached')
  nock.cleanAll()
  authServer(() => [403, { code: 403, error_code: 'bad_jwt', msg: 'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired' }])
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer }))), 'token_expired/401', 'GoTrue says expired (clock skew)')
  nock.cleanAll()
  authServer(() => gotrueUser(randomUUID()))
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer }))), 'invalid_token/401', 'the user GoTrue answers must be the token\'s sub')
  nock.cleanAll()
  nock(URL_).get('/auth/v1/user').reply(async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer }))), 'internal/503', 'unreachable: 503')
})

t.test('the claims still pass the local checks: role, aud, iss', async (t) => {
  const id = randomUUID()
  authServer(() => gotrueUser(id))
  const v = verifier()
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer, role: 'anon' }))), 'forbidden/403', 'not a signed-in user')
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer, aud: 'other' }))), 'invalid_token/401', 'aud')
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: 'https://elsewhere/auth/v1' }))), 'invalid_token/401', 'iss')
  t.equal(await code(v.verifyService(await mintUserToken({ sub: id, iss: issuer }))), 'forbidden/403', 'a user token is not the service role')
})

t.test('with the secret configured, HS256 tokens are verified locally (no call)', async (t) => {
  const seen = authServer(() => [500, {}])
  const v = new TokenVerifier({ jwtSecret: TEST_JWT_SECRET, issuer, remoteVerify: supabaseUserCheck({ url: URL_, anonKey: ANON }) })
  const id = randomUUID()
  t.equal((await v.verifyUser(await mintUserToken({ sub: id, iss: issuer }))).userId, id)
  t.equal(await code(v.verifyUser(await mintUserToken({ sub: id, iss: issuer, secret: 'another-secret-0123456789-0123456789-abc' }))), 'invalid_token/401', 'a wrong signature stays wrong')
  t.equal(seen.length, 0)
  t.equal(v.stats.remoteVerifications, 0)
})
