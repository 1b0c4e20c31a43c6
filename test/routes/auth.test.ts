// Authentication through app.inject on GET /me and GET /workflows, and the cron credential on two
// test-only routes guarded by authenticateCron / authenticateUserOrCron.
// SUPABASE_URL points at a local JWKS server, so the issuer is checked and ES256/RS256 keys come
// from a real HTTP fetch; SUPABASE_JWT_SECRET is set too (HS256).
import t from 'tap'
import type { Test } from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { exportSPKI } from 'jose'
import app, { serverOptions } from '../../src/app.ts'
import { TokenVerifier } from '../../src/services/token-verifier.ts'
import { buildTestApp, testConfig, TEST_CRON_SECRET } from '../helpers/app.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { assertProblem, injector } from '../helpers/http.ts'
import {
  craftToken, generateEs256KeyPair, generateRs256KeyPair, mintAsymmetricToken, mintEs256Token, mintLegacyKey,
  mintUserToken, nowSeconds, randomUserId, startJwksServer, tamperSignature, TEST_JWT_SECRET, userClaims
} from '../helpers/tokens.ts'

const es = await generateEs256KeyPair('es-key-1')
const rs = await generateRs256KeyPair('rs-key-1')
const jwks = await startJwksServer({ keys: [es.publicJwk, rs.publicJwk] })
const iss = jwks.issuer

// The app as a fastify-plugin, so that its decorators (authenticateCron...) reach the root
// instance and two test-only routes can use them; otherwise exactly what buildApp builds.
const config = testConfig({ SUPABASE_URL: jwks.baseUrl, RATE_LIMIT_MAX: '100000' })
const tdb = await createTestDatabase()
const server = Fastify(serverOptions(config, false))
server.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id) })
await server.register(fp(app), { config, testing: { db: tdb.db, migrate: false, swaggerUi: false } })
server.get('/test/cron', { onRequest: server.authenticateCron }, async (request) => ({ scope: request.scope?.kind ?? null }))
server.get('/test/either', { onRequest: server.authenticateUserOrCron }, async (request) => ({
  scope: request.scope?.kind ?? null,
  user: request.user?.userId ?? null
}))
await server.ready()
const { inject } = injector(server)

t.teardown(async () => {
  await server.close()
  await tdb.drop()
  await jwks.close()
})

const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` })
const INVALID = 'The access token is invalid'

async function expect401 (t: Test, headers: Record<string, string>, code: 'invalid_token' | 'token_expired', url = '/me'): Promise<void> {
  const res = await inject({ method: 'GET', url, headers })
  const body = assertProblem(t, res, 401, code)
  t.match(String(res.headers['www-authenticate']), /^Bearer\b/, 'WWW-Authenticate: Bearer')
  if (code === 'invalid_token') t.equal(body.detail, INVALID, 'the detail never says which check failed')
}

t.test('valid HS256 user token → 200 on /me and /workflows', async (t) => {
  const sub = randomUserId()
  const exp = nowSeconds() + 600
  const token = await mintUserToken({ sub, email: 'ada@example.com', iss, exp })
  const me = await inject({ method: 'GET', url: '/me', headers: bearer(token) })
  t.equal(me.statusCode, 200, me.body)
  t.same(me.json(), { user_id: sub, email: 'ada@example.com', role: 'authenticated', expires_at: new Date(exp * 1000).toISOString() })
  const list = await inject({ method: 'GET', url: '/workflows', headers: bearer(token) })
  t.equal(list.statusCode, 200, list.body)
  t.same(list.json(), { data: [], next_cursor: null })
  t.match(String(me.headers['content-type']), /^application\/json/)
  const again = await inject({ method: 'GET', url: '/me', headers: bearer(token) })
  t.equal(again.body, me.body, 'the cached answer is the same bytes')
  // The scheme is case-insensitive and any whitespace around the token is allowed (RFC 7235
  // `1*SP`, and more); an upper-case sub is the same user.
  const spellings = [`bearer ${token}`, `BEARER ${token}`, `Bearer  ${token}`, `Bearer\t${token}`, `Bearer ${token} `, `Bearer ${token}\t`]
  for (const authorization of spellings) {
    const res = await inject({ method: 'GET', url: '/me', headers: { authorization } })
    t.equal(res.statusCode, 200, JSON.stringify(authorization.replace(token, '<token>')))
    t.equal(res.json().user_id, sub)
  }
  // The token cached by now, with something inside or after it: not that token, and not one.
  const at = token.lastIndexOf('.') + 5
  const notTheToken = [`Bearer ${token} x`, `Bearer ${token.slice(0, at)} ${token.slice(at)}`, `Bearer ${token.slice(0, at)}\t${token.slice(at)}`, `Bearer ${token}=`]
  for (const authorization of notTheToken) {
    const res = await inject({ method: 'GET', url: '/me', headers: { authorization } })
    assertProblem(t, res, 401, 'invalid_token')
  }
  const upper = await mintUserToken({ sub: sub.toUpperCase(), iss })
  t.equal((await inject({ method: 'GET', url: '/me', headers: bearer(upper) })).json().user_id, sub)
  // A token without an email claim.
  const noEmail = await mintUserToken({ sub, email: null, iss })
  t.equal((await inject({ method: 'GET', url: '/me', headers: bearer(noEmail) })).json().email, null)
})

t.test('valid ES256 and RS256 tokens from the JWKS → 200', async (t) => {
  const sub = randomUserId()
  const esToken = await mintEs256Token(es.privateKey, es.kid, userClaims({ sub, iss }))
  const res = await inject({ method: 'GET', url: '/me', headers: bearer(esToken) })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().user_id, sub)
  t.equal((await inject({ method: 'GET', url: '/workflows', headers: bearer(esToken) })).statusCode, 200)
  const rsToken = await mintAsymmetricToken('RS256', rs.privateKey, rs.kid, userClaims({ sub, iss }))
  t.equal((await inject({ method: 'GET', url: '/me', headers: bearer(rsToken) })).statusCode, 200)
  t.ok(jwks.requestCount >= 1, 'the keys came from the JWKS server')
})

t.test('missing or malformed credentials → 401 invalid_token with WWW-Authenticate: Bearer', async (t) => {
  for (const url of ['/me', '/workflows']) {
    const res = await inject({ method: 'GET', url })
    assertProblem(t, res, 401, 'invalid_token')
    t.equal(res.headers['www-authenticate'], 'Bearer', 'no error code when no token was sent (RFC 6750)')
  }
  const token = await mintUserToken({ iss })
  // No usable Bearer credentials at all: the plain challenge.
  const noCredentials: Array<Record<string, string>> = [
    { authorization: 'Bearer' },
    { authorization: 'Bearer ' },
    { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    { authorization: token },
    { authorization: `Bearer ${token} ${token}` }
  ]
  for (const headers of noCredentials) {
    for (const url of ['/me', '/workflows']) {
      const res = await inject({ method: 'GET', url, headers })
      const body = assertProblem(t, res, 401, 'invalid_token')
      t.equal(res.headers['www-authenticate'], 'Bearer')
      t.match(String(body.detail), /^An access token is required/)
    }
  }
  // A Bearer token that is not a JWT.
  const malformed: Array<Record<string, string>> = [
    { authorization: 'Bearer not-a-jwt' },
    { authorization: 'Bearer a.b' },
    { authorization: 'Bearer a.b.c.d.e' },
    { authorization: `Bearer ${token}.extra` },
    { authorization: 'Bearer !!!.@@@.###' },
    { authorization: `Bearer ${'x'.repeat(17_000)}` }
  ]
  for (const headers of malformed) {
    await expect401(t, headers, 'invalid_token')
    await expect401(t, headers, 'invalid_token', '/workflows')
  }
})

t.test('expired → 401 token_expired', async (t) => {
  const token = await mintUserToken({ iss, iat: nowSeconds() - 7200, exp: nowSeconds() - 60 })
  await expect401(t, bearer(token), 'token_expired')
  await expect401(t, bearer(token), 'token_expired', '/workflows')
  const res = await inject({ method: 'GET', url: '/me', headers: bearer(token) })
  t.match(String(res.headers['www-authenticate']), /error="invalid_token"/)
  const esExpired = await mintEs256Token(es.privateKey, es.kid, userClaims({ iss, exp: nowSeconds() - 60 }))
  await expect401(t, bearer(esExpired), 'token_expired')
  // Without exp at all: invalid (Supabase always sets it).
  await expect401(t, bearer(await mintUserToken({ iss, exp: null })), 'invalid_token')
})

t.test('forged tokens → 401 invalid_token', async (t) => {
  const claims = userClaims({ iss })
  const cases: Record<string, string> = {
    'bad HS256 signature': tamperSignature(await mintUserToken({ iss })),
    'bad ES256 signature': tamperSignature(await mintEs256Token(es.privateKey, es.kid, claims)),
    'HS256 with another secret': await mintUserToken({ iss, secret: 'another-secret-that-is-long-enough-0123456789' }),
    'alg none, no signature': craftToken({ alg: 'none', typ: 'JWT' }, claims),
    'alg none, with a signature': craftToken({ alg: 'none', typ: 'JWT' }, claims, 'c2ln'),
    'alg NONE': craftToken({ alg: 'NONE', typ: 'JWT' }, claims),
    // Algorithm confusion: HS256 keyed with the JWKS public key (PEM, and the JWK JSON), with its kid.
    'HS256 signed with the JWKS public key (PEM)': await mintUserToken({ iss, secret: await exportSPKI(es.publicKey), kid: es.kid }),
    'HS256 signed with the JWKS public key (JWK)': await mintUserToken({ iss, secret: JSON.stringify(es.publicJwk), kid: es.kid }),
    'HS256 signed with the RSA public key (PEM)': await mintUserToken({ iss, secret: await exportSPKI(rs.publicKey), kid: rs.kid }),
    'HS384 with the right secret': await mintUserToken({ iss, alg: 'HS384' }),
    'ES256 header with the RSA key': await mintAsymmetricToken('RS256', rs.privateKey, es.kid, claims).then((tok) => {
      const [, payload, sig] = tok.split('.')
      return `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: es.kid })).toString('base64url')}.${payload}.${sig}`
    }),
    'ES256 signed by a key not in the JWKS, known kid': await mintEs256Token((await generateEs256KeyPair()).privateKey, es.kid, claims),
    'sub that is not a uuid': await mintUserToken({ iss, sub: 'admin' }),
    'no sub': await mintUserToken({ iss, sub: null })
  }
  for (const [name, token] of Object.entries(cases)) {
    t.test(name, async (t) => {
      await expect401(t, bearer(token), 'invalid_token')
      await expect401(t, bearer(token), 'invalid_token', '/workflows')
    })
  }
})

t.test('wrong aud or iss → 401 invalid_token', async (t) => {
  const cases: Record<string, string> = {
    'aud anon': await mintUserToken({ iss, aud: 'anon' }),
    'aud missing': await mintUserToken({ iss, aud: null }),
    'aud list without authenticated': await mintUserToken({ iss, aud: ['api', 'other'] }),
    'iss of another project': await mintUserToken({ iss: 'https://other.supabase.co/auth/v1' }),
    'iss missing': await mintUserToken({}),
    'iss = SUPABASE_URL without /auth/v1': await mintUserToken({ iss: jwks.baseUrl }),
    'ES256 with a wrong iss': await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: 'https://evil.example/auth/v1' }))
  }
  for (const [name, token] of Object.entries(cases)) {
    t.test(name, async (t) => {
      await expect401(t, bearer(token), 'invalid_token')
      await expect401(t, bearer(token), 'invalid_token', '/workflows')
    })
  }
  // An aud list that includes authenticated is fine.
  const ok = await mintUserToken({ iss, aud: ['authenticated', 'api'] })
  t.equal((await inject({ method: 'GET', url: '/me', headers: bearer(ok) })).statusCode, 200)
})

t.test('valid credentials of the wrong kind → 403 forbidden', async (t) => {
  const cases: Record<string, string> = {
    'user-shaped token with role anon': await mintUserToken({ iss, role: 'anon' }),
    'legacy anon key': await mintLegacyKey({ role: 'anon' }),
    'legacy service_role key': await mintLegacyKey({ role: 'service_role' }),
    'ES256 service_role token': await mintEs256Token(es.privateKey, es.kid, { role: 'service_role', iss, exp: nowSeconds() + 600 })
  }
  for (const [name, token] of Object.entries(cases)) {
    t.test(name, async (t) => {
      for (const url of ['/me', '/workflows']) {
        const body = assertProblem(t, await inject({ method: 'GET', url, headers: bearer(token) }), 403, 'forbidden')
        t.equal(body.detail, 'This route needs a signed-in user')
      }
    })
  }
  // The cron secret is not a user credential.
  await expect401(t, bearer(TEST_CRON_SECRET), 'invalid_token')
})

t.test('cron credential: CRON_SECRET or a service_role JWT; a user token is 403', async (t) => {
  const call = (headers: Record<string, string>, url = '/test/cron') => inject({ method: 'GET', url, headers })
  let res = await call(bearer(TEST_CRON_SECRET))
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { scope: 'service' })
  res = await call(bearer(await mintLegacyKey({ role: 'service_role' })))
  t.same(res.json(), { scope: 'service' }, 'legacy service_role key')
  res = await call(bearer(await mintEs256Token(es.privateKey, es.kid, { role: 'service_role', exp: nowSeconds() + 600 })))
  t.same(res.json(), { scope: 'service' }, 'ES256 service_role JWT')

  // Wrong secrets: same length, one character off; a prefix; a longer one.
  for (const secret of [TEST_CRON_SECRET.slice(0, -1) + 'X', TEST_CRON_SECRET.slice(0, 16), TEST_CRON_SECRET + 'x']) {
    await expect401(t, bearer(secret), 'invalid_token', '/test/cron')
  }
  const missing = await call({})
  assertProblem(t, missing, 401, 'invalid_token')
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  await expect401(t, bearer(await mintLegacyKey({ role: 'service_role', exp: nowSeconds() - 60 })), 'token_expired', '/test/cron')
  await expect401(t, bearer(tamperSignature(await mintLegacyKey({ role: 'service_role' }))), 'invalid_token', '/test/cron')
  await expect401(t, bearer(craftToken({ alg: 'none' }, { role: 'service_role', exp: nowSeconds() + 600 })), 'invalid_token', '/test/cron')

  for (const token of [await mintUserToken({ iss }), await mintLegacyKey({ role: 'anon' })]) {
    const body = assertProblem(t, await call(bearer(token)), 403, 'forbidden')
    t.equal(body.detail, 'This route needs the service role')
  }
})

t.test('user-or-cron credential', async (t) => {
  const call = (token?: string) => inject({ method: 'GET', url: '/test/either', headers: token === undefined ? {} : bearer(token) })
  const sub = randomUserId()
  let res = await call(await mintUserToken({ sub, iss }))
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { scope: 'user', user: sub })
  res = await call(await mintEs256Token(es.privateKey, es.kid, userClaims({ sub, iss })))
  t.same(res.json(), { scope: 'user', user: sub })
  t.same((await call(TEST_CRON_SECRET)).json(), { scope: 'service', user: null })
  t.same((await call(await mintLegacyKey({ role: 'service_role' }))).json(), { scope: 'service', user: null })
  assertProblem(t, await call(await mintLegacyKey({ role: 'anon' })), 403, 'forbidden')
  // A user token still gets every user check: wrong iss, wrong aud.
  await expect401(t, bearer(await mintUserToken({ iss: 'https://other.example/auth/v1' })), 'invalid_token', '/test/either')
  await expect401(t, bearer(await mintUserToken({ iss, aud: 'anon' })), 'invalid_token', '/test/either')
  await expect401(t, bearer(await mintUserToken({ iss, exp: nowSeconds() - 60 })), 'token_expired', '/test/either')
  const missing = await call()
  assertProblem(t, missing, 401, 'invalid_token')
  t.equal(missing.headers['www-authenticate'], 'Bearer')
})

t.test('unknown kids right after a fetch: no refetch storm (default cooldown)', async (t) => {
  const keyA = await generateEs256KeyPair('storm-a')
  const server2 = await startJwksServer({ keys: [keyA.publicJwk] })
  const h = await buildTestApp({ env: { SUPABASE_URL: server2.baseUrl, RATE_LIMIT_MAX: '100000' } })
  t.teardown(async () => { await h.close(); await server2.close() })
  const claims = () => userClaims({ iss: server2.issuer })
  const first = await h.app.inject({ method: 'GET', url: '/me', headers: bearer(await mintEs256Token(keyA.privateKey, keyA.kid, claims())) })
  t.equal(first.statusCode, 200, first.body)
  t.equal(server2.requestCount, 1, 'the key set was fetched once')
  const stranger = await generateEs256KeyPair()
  for (let i = 0; i < 10; i++) {
    const res = await h.app.inject({ method: 'GET', url: '/workflows', headers: bearer(await mintEs256Token(stranger.privateKey, `nobody-${i}`, claims())) })
    assertProblem(t, res, 401, 'invalid_token')
  }
  const burst = await Promise.all(Array.from({ length: 25 }, async (_, i) => {
    const tok = await mintEs256Token(stranger.privateKey, `burst-${i}`, claims())
    return (await h.app.inject({ method: 'GET', url: '/me', headers: bearer(tok) })).statusCode
  }))
  t.same([...new Set(burst)], [401])
  t.equal(server2.requestCount, 1, 'no fetch for 35 unknown-kid requests within the cooldown')
})

t.test('an unknown kid refetches the JWKS once per cooldown, not once per request (key rotation)', async (t) => {
  const keyA = await generateEs256KeyPair('rot-a')
  const keyB = await generateEs256KeyPair('rot-b')
  const server2 = await startJwksServer({ keys: [keyA.publicJwk] })
  // The verifier the auth plugin would build from this config, with a clock the test moves.
  let clock = Date.now()
  const cfg = testConfig({ SUPABASE_URL: server2.baseUrl })
  const tokenVerifier = new TokenVerifier({ jwtSecret: cfg.SUPABASE_JWT_SECRET!, jwksUrl: cfg.jwksUrl!, issuer: cfg.issuer!, now: () => clock })
  const h = await buildTestApp({ env: { SUPABASE_URL: server2.baseUrl, RATE_LIMIT_MAX: '100000' }, tokenVerifier })
  t.teardown(async () => { await h.close(); await server2.close() })
  const sub = randomUserId()
  const claims = () => userClaims({ sub, iss: server2.issuer })
  const get = async (token: string, url = '/me') => await h.app.inject({ method: 'GET', url, headers: bearer(token) })

  t.equal((await get(await mintEs256Token(keyA.privateKey, keyA.kid, claims()))).statusCode, 200)
  t.equal(server2.requestCount, 1)

  // The provider rotates: key B is published and used, long after the last fetch.
  clock += 31_000
  server2.setKeys({ keys: [keyA.publicJwk, keyB.publicJwk] })
  const rotated = await get(await mintEs256Token(keyB.privateKey, keyB.kid, claims()))
  t.equal(rotated.statusCode, 200, rotated.body)
  t.equal(server2.requestCount, 2, 'one refetch for the unknown kid')

  // Many requests (sequential and concurrent) with kids nobody publishes: no further fetch.
  const stranger = await generateEs256KeyPair()
  for (let i = 0; i < 10; i++) {
    assertProblem(t, await get(await mintEs256Token(stranger.privateKey, `nobody-${i}`, claims()), '/workflows'), 401, 'invalid_token')
  }
  const burst = await Promise.all(Array.from({ length: 25 }, async (_, i) =>
    (await get(await mintEs256Token(stranger.privateKey, `burst-${i}`, claims()))).statusCode))
  t.same([...new Set(burst)], [401])
  t.equal(server2.requestCount, 2, 'still two fetches after 35 unknown-kid requests')
  // Known keys keep working from the cache; after the cooldown, one more refetch at most.
  t.equal((await get(await mintEs256Token(keyA.privateKey, keyA.kid, claims()))).statusCode, 200)
  clock += 31_000
  await Promise.all(Array.from({ length: 5 }, async (_, i) => await get(await mintEs256Token(stranger.privateKey, `later-${i}`, claims()))))
  t.equal(server2.requestCount, 3, 'one refetch in the next window')
})

t.test('concurrent first requests with an unknown kid share one fetch', async (t) => {
  const key = await generateEs256KeyPair('conc-a')
  const server3 = await startJwksServer({ keys: [key.publicJwk] })
  server3.setDelay(100)
  const h = await buildTestApp({ env: { SUPABASE_URL: server3.baseUrl, RATE_LIMIT_MAX: '100000' } })
  t.teardown(async () => { await h.close(); await server3.close() })
  const stranger = await generateEs256KeyPair()
  const codes = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const kid = i % 2 === 0 ? key.kid : `unknown-${i}`
    const priv = i % 2 === 0 ? key.privateKey : stranger.privateKey
    const tok = await mintEs256Token(priv, kid, userClaims({ iss: server3.issuer }))
    return (await h.app.inject({ method: 'GET', url: '/me', headers: bearer(tok) })).statusCode
  }))
  t.same(codes.filter((c) => c === 200).length, 10, 'the known kid verifies')
  t.same(codes.filter((c) => c === 401).length, 10, 'the unknown kids do not')
  t.equal(server3.requestCount, 1, 'one fetch for twenty concurrent requests')
})

t.test('HS256 still works next to a JWKS, and the secret alone verifies nothing asymmetric', async (t) => {
  // Same secret as the app: an HS256 token with a JWKS kid in its header is still HS256.
  const tok = await mintUserToken({ iss, kid: es.kid, secret: TEST_JWT_SECRET })
  t.equal((await inject({ method: 'GET', url: '/me', headers: bearer(tok) })).statusCode, 200)
})
