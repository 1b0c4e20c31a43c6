import t from 'tap'
import type { Test } from 'tap'
import { exportSPKI, SignJWT } from 'jose'
import { createHmac, randomUUID } from 'node:crypto'
import { AppError } from '../../src/errors.ts'
import type { ProblemCode } from '../../src/errors.ts'
import { TokenVerifier } from '../../src/services/token-verifier.ts'
import type { TokenVerifierOptions } from '../../src/services/token-verifier.ts'
import {
  TEST_JWT_SECRET,
  base64url,
  craftToken,
  generateEs256KeyPair,
  generateKeyPairWithJwk,
  generateRs256KeyPair,
  mintAsymmetricToken,
  mintEs256Token,
  mintLegacyKey,
  mintUserToken,
  nowSeconds,
  randomUserId,
  startJwksServer,
  tamperSignature,
  userClaims
} from '../helpers/tokens.ts'
import type { JwksServer, TestKeyPair } from '../helpers/tokens.ts'

const INVALID = 'The access token is invalid'

interface Clock { ms: number }

function makeClock (): Clock {
  return { ms: Date.now() }
}

function hsVerifier (clock: Clock = makeClock(), extra: Partial<TokenVerifierOptions> = {}): TokenVerifier {
  return new TokenVerifier({ jwtSecret: TEST_JWT_SECRET, now: () => clock.ms, ...extra })
}

async function expectCode (t: Test, p: Promise<unknown>, code: ProblemCode, status: number, message?: string): Promise<void> {
  try {
    await p
    t.fail(`expected ${code}, but it resolved`)
  } catch (err) {
    t.ok(err instanceof AppError, 'an AppError')
    const e = err as AppError
    t.equal(e.code, code)
    t.equal(e.status, status)
    if (message !== undefined) t.equal(e.message, message)
  }
}

async function invalid (t: Test, p: Promise<unknown>, label?: string): Promise<void> {
  if (label !== undefined) t.comment(label)
  await expectCode(t, p, 'invalid_token', 401, INVALID)
}

async function waitFor (cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('construction', async (t) => {
  t.throws(() => new TokenVerifier({}), TypeError, 'neither secret nor JWKS')
  t.throws(() => new TokenVerifier({ jwtSecret: '' }), TypeError, 'empty secret counts as none')
  t.throws(() => new TokenVerifier({ jwksUrl: 'not a url' }))
  t.throws(() => new TokenVerifier({ jwksUrl: 'file:///etc/passwd' }), TypeError)
  t.throws(() => new TokenVerifier({ jwtSecret: TEST_JWT_SECRET, cacheMaxEntries: -1 }), TypeError)
  t.ok(new TokenVerifier({ jwtSecret: TEST_JWT_SECRET }))
})

t.test('malformed tokens → invalid_token', async (t) => {
  const v = hsVerifier()
  await invalid(t, v.verify(''))
  await invalid(t, v.verify(undefined as unknown as string))
  await invalid(t, v.verify(null as unknown as string))
  await invalid(t, v.verifyUser(''))
  await invalid(t, v.verify('garbage'))
  await invalid(t, v.verify('a.b.c'))
  await invalid(t, v.verify('..'))
  await invalid(t, v.verify('eyJhbGciOiJIUzI1NiJ9.e30'))
  await invalid(t, v.verify(`${base64url('{"alg":"HS256"')}.${base64url('{}')}.abc`))
  await invalid(t, v.verify(`${base64url('[]')}.${base64url('{}')}.abc`))
  const good = await mintUserToken()
  await invalid(t, v.verify(`${good}.extra.parts`), 'five parts (JWE shape)')
  await invalid(t, v.verify(`${good}.`))
  await invalid(t, v.verify('x'.repeat(20_000)))
  // Outside the compact alphabet (base64url and dots), even where a lenient decoder would skip
  // the character and find the good signature: whitespace, padding, standard base64.
  const at = good.lastIndexOf('.') + 5
  for (const c of [' ', '\t', '=', '+', '/', '\n']) {
    await invalid(t, v.verify(good.slice(0, at) + c + good.slice(at)), `signature with ${JSON.stringify(c)}`)
  }
  t.equal(v.stats.signatureVerifications, 0, 'refused before any signature check')
  // payload that is not JSON, with a valid HS256 signature over it
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const payload = base64url('not json')
  const sig = createHmac('sha256', TEST_JWT_SECRET).update(`${header}.${payload}`).digest('base64url')
  await invalid(t, v.verify(`${header}.${payload}.${sig}`))
  t.equal(v.stats.cacheSize, 0, 'nothing cached')
})

t.test('time checks', async (t) => {
  const clock = makeClock()
  const v = hsVerifier(clock)
  const now = Math.floor(clock.ms / 1000)

  await expectCode(t, v.verifyUser(await mintUserToken({ exp: now - 60 })), 'token_expired', 401, 'The access token has expired')
  await expectCode(t, v.verify(await mintUserToken({ exp: now - 60 })), 'token_expired', 401)
  const withinTolerance = await v.verifyUser(await mintUserToken({ exp: now - 2 }))
  t.equal(withinTolerance.expiresAt, now - 2, 'within the 5 s clock tolerance')
  t.equal(v.stats.cacheSize, 0, 'a token past its exp is not cached even when accepted')

  await invalid(t, v.verify(await mintUserToken({ extra: { nbf: now + 120 } })))
  t.ok(await v.verify(await mintUserToken({ extra: { nbf: now - 10 } })), 'nbf in the past is fine')
  await invalid(t, v.verify(await mintUserToken({ exp: null })), 'exp is required')
  await invalid(t, v.verify(await mintUserToken({ extra: { exp: 'tomorrow' } })), 'exp must be numeric')

  // expired token with a bad signature: signature first → invalid_token, not token_expired
  await invalid(t, v.verify(await mintUserToken({ exp: now - 60, secret: 'another-secret-that-is-long-enough-0000' })))

  const strict = hsVerifier(clock, { clockToleranceSec: 0 })
  await expectCode(t, strict.verify(await mintUserToken({ exp: now - 2 })), 'token_expired', 401)
})

t.test('signature checks', async (t) => {
  const v = hsVerifier()
  await invalid(t, v.verify(await mintUserToken({ secret: 'a-completely-different-secret-of-length-40' })))
  await invalid(t, v.verify(tamperSignature(await mintUserToken())))
  const good = await mintUserToken()
  const [h, p] = good.split('.')
  await invalid(t, v.verify(`${h}.${p}.`), 'empty signature')
  // payload swapped under a valid signature
  const other = await mintUserToken({ role: 'service_role' })
  await invalid(t, v.verify(`${h}.${other.split('.')[1]}.${good.split('.')[2]}`))
  await invalid(t, v.verify(await mintUserToken({ alg: 'HS512' })), 'only HS256 for the secret')
  await invalid(t, v.verify(await mintUserToken({ alg: 'HS384' })))
})

t.test('alg none and unknown algorithms → invalid_token', async (t) => {
  const v = hsVerifier()
  const claims = userClaims()
  await invalid(t, v.verify(craftToken({ alg: 'none', typ: 'JWT' }, claims)))
  await invalid(t, v.verify(craftToken({ alg: 'none', typ: 'JWT' }, claims, 'c2ln')))
  await invalid(t, v.verify(craftToken({ alg: 'None', typ: 'JWT' }, claims)))
  await invalid(t, v.verify(craftToken({ alg: 'NONE', typ: 'JWT' }, claims)))
  await invalid(t, v.verify(craftToken({ typ: 'JWT' }, claims)))
  await invalid(t, v.verify(craftToken({ alg: 42 }, claims)))
  await invalid(t, v.verify(craftToken({ alg: 'HS256X' }, claims, 'abc')))
  // a valid HMAC under a header that says "none"
  const header = base64url(JSON.stringify({ alg: 'none' }))
  const payload = base64url(JSON.stringify(claims))
  const sig = createHmac('sha256', TEST_JWT_SECRET).update(`${header}.${payload}`).digest('base64url')
  await invalid(t, v.verify(`${header}.${payload}.${sig}`))
  // a crit header jose does not understand
  const critHeader = base64url(JSON.stringify({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': true }))
  const critSig = createHmac('sha256', TEST_JWT_SECRET).update(`${critHeader}.${payload}`).digest('base64url')
  await invalid(t, v.verify(`${critHeader}.${payload}.${critSig}`), 'unknown crit header')
  t.equal(v.stats.cacheSize, 0)
})

t.test('JWKS verifier', async (t) => {
  let server: JwksServer
  let es: TestKeyPair
  let rs: TestKeyPair
  let ed: TestKeyPair

  t.before(async () => {
    es = await generateEs256KeyPair('es-key-1')
    rs = await generateRs256KeyPair('rs-key-1')
    ed = await generateKeyPairWithJwk('EdDSA', 'ed-key-1')
    server = await startJwksServer({ keys: [es.publicJwk, rs.publicJwk, ed.publicJwk] })
  })
  t.teardown(async () => { await server.close() })

  function jwksVerifier (clock: Clock, extra: Partial<TokenVerifierOptions> = {}): TokenVerifier {
    return new TokenVerifier({ jwksUrl: server.jwksUrl, issuer: server.issuer, now: () => clock.ms, ...extra })
  }

  t.test('valid ES256, RS256 and EdDSA tokens → identity', async (t) => {
    const clock = makeClock()
    const v = jwksVerifier(clock)
    const before = server.requestCount
    const sub = randomUserId()
    const esId = await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ sub, iss: server.issuer, email: 'a@b.test' })))
    t.equal(esId.userId, sub)
    t.equal(esId.email, 'a@b.test')
    t.equal(esId.role, 'authenticated')
    t.equal(esId.claims.iss, server.issuer)
    const rsId = await v.verifyUser(await mintAsymmetricToken('RS256', rs.privateKey, rs.kid, userClaims({ sub, iss: server.issuer })))
    t.equal(rsId.userId, sub)
    const edId = await v.verifyUser(await mintAsymmetricToken('EdDSA', ed.privateKey, ed.kid, userClaims({ sub, iss: server.issuer })))
    t.equal(edId.userId, sub)
    t.equal(server.requestCount - before, 1, 'one JWKS fetch for all three')
  })

  t.test('a token without kid works when exactly one key fits', async (t) => {
    const clock = makeClock()
    const v = jwksVerifier(clock)
    const id = await v.verifyUser(await mintEs256Token(es.privateKey, undefined, userClaims({ iss: server.issuer })))
    t.equal(id.role, 'authenticated')
  })

  t.test('wrong signer, pinned algorithms', async (t) => {
    const clock = makeClock()
    const v = jwksVerifier(clock)
    const stranger = await generateEs256KeyPair(es.kid) // same kid, different key
    await invalid(t, v.verifyUser(await mintEs256Token(stranger.privateKey, es.kid, userClaims({ iss: server.issuer }))))
    await invalid(t, v.verify(tamperSignature(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer })))))
    // RS256 header pointing at the EC key: the key's type pins ES256
    await invalid(t, v.verify(await mintAsymmetricToken('RS256', rs.privateKey, es.kid, userClaims())))
    // PS256 header over the key published with alg RS256
    await invalid(t, v.verify(craftToken({ alg: 'PS256', kid: rs.kid }, userClaims(), 'abc')))
    // EdDSA header pointing at the RSA key
    await invalid(t, v.verify(await mintAsymmetricToken('EdDSA', ed.privateKey, rs.kid, userClaims())))
    // ES384 header with the P-256 key
    await invalid(t, v.verify(craftToken({ alg: 'ES384', kid: es.kid }, userClaims(), 'abc')))
  })

  t.test('algorithm confusion: HS256 signed with the public key → invalid_token', async (t) => {
    const clock = makeClock()
    const jwksOnly = jwksVerifier(clock)
    const both = jwksVerifier(clock, { jwtSecret: TEST_JWT_SECRET })
    const jwkBytes = new TextEncoder().encode(JSON.stringify(es.publicJwk))
    const pemBytes = new TextEncoder().encode(await exportSPKI(es.publicKey))
    const rsaPemBytes = new TextEncoder().encode(await exportSPKI(rs.publicKey))
    const before = server.requestCount
    for (const [name, secret] of [['jwk json', jwkBytes], ['ec spki pem', pemBytes], ['rsa spki pem', rsaPemBytes]] as const) {
      for (const kid of [es.kid, rs.kid, undefined]) {
        const token = await mintUserToken({ secret, kid, iss: server.issuer })
        await invalid(t, jwksOnly.verifyUser(token), `${name}, kid ${kid}, JWKS only`)
        await invalid(t, both.verifyUser(token), `${name}, kid ${kid}, secret + JWKS`)
      }
    }
    t.equal(server.requestCount, before, 'an HS256 token never reaches the JWKS')

    // The reverse: an ES256 header whose "signature" is an HMAC with the shared secret.
    const header = base64url(JSON.stringify({ alg: 'ES256', kid: es.kid, typ: 'JWT' }))
    const payload = base64url(JSON.stringify(userClaims({ iss: server.issuer })))
    const hmac = createHmac('sha256', TEST_JWT_SECRET).update(`${header}.${payload}`).digest('base64url')
    await invalid(t, both.verifyUser(`${header}.${payload}.${hmac}`))

    // A symmetric key smuggled into the JWKS is never used.
    const smuggling = await startJwksServer({
      keys: [{ kty: 'oct', kid: 'oct-1', k: base64url(TEST_JWT_SECRET), alg: 'HS256' }]
    })
    t.teardown(async () => { await smuggling.close() })
    const v2 = new TokenVerifier({ jwksUrl: smuggling.jwksUrl, now: () => clock.ms })
    await invalid(t, v2.verify(await mintUserToken({ kid: 'oct-1' })))
    const fake = craftToken({ alg: 'ES256', kid: 'oct-1' }, userClaims(), 'abc')
    await invalid(t, v2.verify(fake))

    // An asymmetric token on a secret-only verifier.
    const secretOnly = hsVerifier(clock)
    await invalid(t, secretOnly.verify(await mintEs256Token(es.privateKey, es.kid)))
  })

  t.test('issuer and audience', async (t) => {
    const clock = makeClock()
    const v = jwksVerifier(clock)
    await invalid(t, v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: 'https://evil.example/auth/v1' }))))
    await invalid(t, v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: null }))))
    await invalid(t, v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer, aud: 'other' }))))
    await invalid(t, v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer, aud: null }))))
    const multi = await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer, aud: ['other', 'authenticated'] })))
    t.same(multi.claims.aud, ['other', 'authenticated'])
    const custom = jwksVerifier(clock, { audience: 'other' })
    t.ok(await custom.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer, aud: 'other' }))))
  })

  t.test('unknown kid: one refetch per cooldown, shared by concurrent callers', async (t) => {
    const clock = makeClock()
    const v = jwksVerifier(clock, { jwksCooldownMs: 30_000 })
    server.setDelay(0)
    const start = server.requestCount

    // 20 concurrent first requests share the initial fetch
    server.setDelay(30)
    const firsts = await Promise.all(Array.from({ length: 20 }, async () =>
      await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer })))))
    t.equal(firsts.length, 20)
    t.equal(server.requestCount - start, 1, 'initial load: one fetch')

    // Within the cooldown of that load: unknown kids are rejected without a fetch.
    const stranger = await generateEs256KeyPair('not-published')
    const strangerToken = await mintEs256Token(stranger.privateKey, stranger.kid, userClaims({ iss: server.issuer }))
    await invalid(t, v.verifyUser(strangerToken))
    t.equal(server.requestCount - start, 1, 'no refetch inside the cooldown')

    clock.ms += 30_001
    const tokens = await Promise.all(Array.from({ length: 20 }, async (_, i) =>
      await mintEs256Token(stranger.privateKey, `unknown-${i}`, userClaims({ iss: server.issuer }))))
    const results = await Promise.allSettled(tokens.map(async (tok) => await v.verifyUser(tok)))
    t.ok(results.every((r) => r.status === 'rejected' && (r.reason as AppError).code === 'invalid_token'), 'all 20 rejected')
    t.equal(server.requestCount - start, 2, 'exactly one refetch for 20 concurrent unknown kids')

    for (let i = 0; i < 10; i++) {
      clock.ms += 1000
      await invalid(t, v.verifyUser(strangerToken))
    }
    t.equal(server.requestCount - start, 2, 'no further fetch within the cooldown')
    // known keys keep working meanwhile
    t.ok(await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: server.issuer }))))

    clock.ms += 30_000
    await invalid(t, v.verifyUser(strangerToken))
    t.equal(server.requestCount - start, 3, 'next refetch only after the cooldown')
    server.setDelay(0)
    t.equal(v.stats.jwksFetches, 3)
  })

  t.test('key rotation: a new kid is accepted after the cooldown', async (t) => {
    const clock = makeClock()
    const rotating = await startJwksServer({ keys: [es.publicJwk] })
    t.teardown(async () => { await rotating.close() })
    const v = new TokenVerifier({ jwksUrl: rotating.jwksUrl, issuer: rotating.issuer, now: () => clock.ms, jwksCooldownMs: 30_000 })
    t.ok(await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: rotating.issuer }))))
    t.equal(rotating.requestCount, 1)

    const next = await generateEs256KeyPair('es-key-2')
    rotating.setKeys({ keys: [es.publicJwk, next.publicJwk] })
    const newToken = await mintEs256Token(next.privateKey, next.kid, userClaims({ iss: rotating.issuer }))
    await invalid(t, v.verifyUser(newToken))
    t.equal(rotating.requestCount, 1, 'still inside the cooldown')

    clock.ms += 30_000
    const id = await v.verifyUser(newToken)
    t.equal(id.role, 'authenticated')
    t.equal(rotating.requestCount, 2, 'one refetch found the new key')
    t.ok(await v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: rotating.issuer }))), 'old key still accepted')
    t.equal(rotating.requestCount, 2)

    // old key retired: tokens not yet cached by it fail once the set is refreshed
    rotating.setKeys({ keys: [next.publicJwk] })
    clock.ms += 600_000
    t.ok(await v.verifyUser(await mintEs256Token(next.privateKey, next.kid, userClaims({ iss: rotating.issuer }))), 'served from the stale set')
    await waitFor(() => rotating.requestCount === 3 && !v.stats.jwksFetchInFlight) // background refresh settled
    await invalid(t, v.verifyUser(await mintEs256Token(es.privateKey, es.kid, userClaims({ iss: rotating.issuer }))))
  })

  t.test('JWKS unavailable', async (t) => {
    const clock = makeClock()
    const down = await startJwksServer({ keys: [es.publicJwk] })
    t.teardown(async () => { await down.close() })
    down.setFailure(500)
    const errors: unknown[] = []
    const v = new TokenVerifier({ jwksUrl: down.jwksUrl, now: () => clock.ms, onJwksError: (e) => { errors.push(e) } })
    const token = await mintEs256Token(es.privateKey, es.kid)
    await expectCode(t, v.verify(token), 'internal', 503, 'Signing keys are unavailable')
    t.equal(down.requestCount, 1)
    t.equal(errors.length, 1, 'onJwksError called')
    await expectCode(t, v.verify(token), 'internal', 503)
    t.equal(down.requestCount, 1, 'no hammering within the cooldown')
    try {
      await v.verify(token)
    } catch (err) {
      t.match((err as AppError).headers, { 'retry-after': /^\d+$/ })
    }

    clock.ms += 30_000
    down.setFailure(null)
    t.ok(await v.verify(token), 'recovers after the cooldown')
    t.equal(down.requestCount, 2)

    // failure while a stale set exists: the stale keys keep working
    down.setFailure(503)
    clock.ms += 600_000
    const fresh = await mintEs256Token(es.privateKey, es.kid)
    t.ok(await v.verify(fresh))
    await waitFor(() => down.requestCount === 3 && !v.stats.jwksFetchInFlight)
    t.equal(v.stats.jwksFetchFailures, 2)
    t.ok(await v.verify(await mintEs256Token(es.privateKey, es.kid)), 'stale keys still used')

    // unreachable (nothing listening) and a timeout
    const closed = await startJwksServer()
    const closedUrl = closed.jwksUrl
    await closed.close()
    const v2 = new TokenVerifier({ jwksUrl: closedUrl, now: () => clock.ms })
    await expectCode(t, v2.verify(token), 'internal', 503)

    const slow = await startJwksServer({ keys: [es.publicJwk] })
    t.teardown(async () => { await slow.close() })
    slow.setDelay(500)
    const v3 = new TokenVerifier({ jwksUrl: slow.jwksUrl, jwksTimeoutMs: 50, now: () => clock.ms })
    await expectCode(t, v3.verify(token), 'internal', 503)

    // garbage body
    const garbage = new TokenVerifier({
      jwksUrl: 'https://example.test/jwks.json',
      now: () => clock.ms,
      fetch: async () => new Response('{"nokeys":true}', { status: 200, headers: { 'content-type': 'application/json' } })
    })
    await expectCode(t, garbage.verify(token), 'internal', 503)
    t.equal(await garbage.loadKeys(), false)

    // an empty key set (Supabase without asymmetric keys) is not an outage
    const empty = new TokenVerifier({
      jwksUrl: 'https://example.test/jwks.json',
      now: () => clock.ms,
      fetch: async () => new Response('{"keys":[]}', { status: 200 })
    })
    await invalid(t, empty.verify(token))
  })
})

t.test('roles', async (t) => {
  const v = hsVerifier()
  const anonKey = await mintLegacyKey({ role: 'anon' })
  const serviceKey = await mintLegacyKey({ role: 'service_role' })
  const user = await mintUserToken()

  await expectCode(t, v.verifyUser(anonKey), 'forbidden', 403, 'This route needs a signed-in user')
  await expectCode(t, v.verifyUser(serviceKey), 'forbidden', 403)
  await expectCode(t, v.verifyUser(await mintUserToken({ role: 'anon' })), 'forbidden', 403)
  await expectCode(t, v.verifyUser(await mintUserToken({ role: 'service_role' })), 'forbidden', 403)

  const service = await v.verifyService(serviceKey)
  t.equal(service.role, 'service_role')
  t.equal(service.iss, 'supabase')
  t.equal(service.sub, undefined)
  await expectCode(t, v.verifyService(user), 'forbidden', 403, 'This route needs the service role')
  await expectCode(t, v.verifyService(anonKey), 'forbidden', 403)
  await invalid(t, v.verifyService(await mintLegacyKey({ secret: 'wrong-secret-wrong-secret-wrong-secret!!' })))
  await expectCode(t, v.verifyService(await mintLegacyKey({ exp: nowSeconds() - 60 })), 'token_expired', 401)

  // role missing entirely → invalid (not a Supabase token)
  const noRole = await new SignJWT({ sub: randomUserId(), aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET))
  await invalid(t, v.verifyUser(noRole))
  await invalid(t, v.verifyService(noRole))

  // service role via an asymmetric key works too
  const es = await generateEs256KeyPair()
  const server = await startJwksServer({ keys: [es.publicJwk] })
  t.teardown(async () => { await server.close() })
  const v2 = new TokenVerifier({ jwksUrl: server.jwksUrl, issuer: server.issuer })
  const claims = await v2.verifyService(await mintEs256Token(es.privateKey, es.kid, { role: 'service_role', exp: nowSeconds() + 60 }))
  t.equal(claims.role, 'service_role')
})

t.test('verifyUser: identity and sub checks', async (t) => {
  const v = hsVerifier(makeClock(), { issuer: 'https://ref.supabase.co/auth/v1' })
  const sub = randomUserId()
  const exp = nowSeconds() + 600
  const token = await mintUserToken({ sub, email: 'someone@example.test', exp, iss: 'https://ref.supabase.co/auth/v1' })
  const id = await v.verifyUser(token)
  t.same(
    { userId: id.userId, email: id.email, role: id.role, expiresAt: id.expiresAt },
    { userId: sub, email: 'someone@example.test', role: 'authenticated', expiresAt: exp }
  )
  t.equal(id.claims.sub, sub)
  t.equal(id.claims.aal, 'aal1')
  t.ok(Object.isFrozen(id.claims), 'claims are frozen')
  t.ok(Object.isFrozen(id.claims.app_metadata), 'deeply')

  const anonymousUser = await v.verifyUser(await mintUserToken({ email: '', iss: 'https://ref.supabase.co/auth/v1', extra: { is_anonymous: true } }))
  t.equal(anonymousUser.email, null, 'empty email → null')
  t.equal(anonymousUser.claims.is_anonymous, true)
  const noEmail = await v.verifyUser(await mintUserToken({ email: null, iss: 'https://ref.supabase.co/auth/v1' }))
  t.equal(noEmail.email, null)

  const upper = await v.verifyUser(await mintUserToken({ sub: sub.toUpperCase(), iss: 'https://ref.supabase.co/auth/v1' }))
  t.equal(upper.userId, sub, 'userId is lower-cased')

  await invalid(t, v.verifyUser(await mintUserToken({ sub: 'not-a-uuid', iss: 'https://ref.supabase.co/auth/v1' })))
  await invalid(t, v.verifyUser(await mintUserToken({ sub: null, iss: 'https://ref.supabase.co/auth/v1' })))
  await invalid(t, v.verifyUser(await mintUserToken({ sub: `${sub}x`, iss: 'https://ref.supabase.co/auth/v1' })))
  await invalid(t, v.verifyUser(await mintUserToken({ sub, iss: 'https://other.supabase.co/auth/v1' })))
  await invalid(t, v.verifyUser(await mintUserToken({ sub, aud: 'anon', iss: 'https://ref.supabase.co/auth/v1' })))

  const noIssuer = hsVerifier()
  t.ok(await noIssuer.verifyUser(await mintUserToken({ iss: 'anything' })), 'iss unchecked when no issuer is configured')
})

t.test('verified-token cache', async (t) => {
  t.test('a second verify of the same token skips jose', async (t) => {
    const v = hsVerifier()
    const token = await mintUserToken()
    const a = await v.verifyUser(token)
    t.equal(v.stats.signatureVerifications, 1)
    const b = await v.verifyUser(token)
    t.equal(v.stats.signatureVerifications, 1, 'no second signature check')
    t.equal(v.stats.cacheHits, 1)
    t.equal(a.userId, b.userId)
    t.equal(a.claims, b.claims, 'same frozen claims object')

    const concurrent = await mintUserToken()
    await Promise.all(Array.from({ length: 25 }, async () => await v.verifyUser(concurrent)))
    t.equal(v.stats.signatureVerifications, 2, '25 concurrent verifications of one token → one check')
  })

  t.test('cached tokens still expire', async (t) => {
    const clock = makeClock()
    const v = hsVerifier(clock)
    const exp = Math.floor(clock.ms / 1000) + 60
    const token = await mintUserToken({ exp })
    await v.verifyUser(token)
    clock.ms = exp * 1000 - 1
    t.ok(await v.verifyUser(token), 'still valid one ms before exp')
    t.equal(v.stats.signatureVerifications, 1)
    clock.ms = exp * 1000 + 10_000
    await expectCode(t, v.verifyUser(token), 'token_expired', 401)
    t.equal(v.stats.cacheSize, 0, 'expired entry dropped')
    await expectCode(t, v.verifyUser(token), 'token_expired', 401)
  })

  t.test('a tampered signature of a cached token misses the cache', async (t) => {
    const v = hsVerifier()
    const token = await mintUserToken()
    await v.verifyUser(token)
    const before = v.stats.signatureVerifications
    await invalid(t, v.verifyUser(tamperSignature(token)))
    t.equal(v.stats.signatureVerifications, before + 1, 'it was checked, not served from the cache')
    // a prefix or an extension of the cached token neither
    await invalid(t, v.verifyUser(token.slice(0, -1)))
    await invalid(t, v.verifyUser(`${token}A`))
    // same header and payload, signature of another secret
    const [h, p] = token.split('.')
    const foreign = createHmac('sha256', 'some-other-secret').update(`${h}.${p}`).digest('base64url')
    await invalid(t, v.verifyUser(`${h}.${p}.${foreign}`))
    t.ok(await v.verifyUser(token), 'the original is still fine')
  })

  t.test('a token that ends like a cached one is not taken for it', async (t) => {
    // The cache is keyed by a token's end (its signature's): a forged token carrying a cached
    // token's signature under other claims must be verified, and fail, not be answered from it.
    const v = hsVerifier()
    const userId = randomUUID()
    const good = await mintUserToken({ sub: userId })
    t.equal((await v.verifyUser(good)).userId, userId)
    const [, payload, signature] = good.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
    const forged = [good.split('.')[0], Buffer.from(JSON.stringify({ ...claims, sub: randomUUID() })).toString('base64url'), signature].join('.')
    t.equal(forged.slice(-32), good.slice(-32), 'the same last 32 characters')
    t.equal(v.cachedUser(forged), undefined, 'no synchronous answer for it')
    await invalid(t, v.verifyUser(forged))
    await invalid(t, v.verify(forged))
    const n = v.stats.signatureVerifications
    t.equal((await v.verifyUser(good)).userId, userId, 'the cached token still answers')
    t.equal(v.stats.signatureVerifications, n, 'from the cache')
    t.equal(v.cachedUser(good)?.userId, userId)
  })

  t.test('failures are not cached', async (t) => {
    const v = hsVerifier()
    const bad = await mintUserToken({ secret: 'not-the-secret-not-the-secret-not-the-secret' })
    await invalid(t, v.verify(bad))
    await invalid(t, v.verify(bad))
    t.equal(v.stats.signatureVerifications, 2)
    t.equal(v.stats.cacheSize, 0)
    // a cached success does not make a role check pass
    const anon = await mintLegacyKey({ role: 'anon' })
    await expectCode(t, v.verifyUser(anon), 'forbidden', 403)
    await expectCode(t, v.verifyUser(anon), 'forbidden', 403)
  })

  t.test('bounded, evicts the least recently used', async (t) => {
    const clock = makeClock()
    const v = hsVerifier(clock, { cacheMaxEntries: 2 })
    const [a, b, c] = await Promise.all([mintUserToken(), mintUserToken(), mintUserToken()]) as [string, string, string]
    await v.verify(a)
    await v.verify(b)
    clock.ms += 1000
    await v.verify(a) // a becomes the youngest (last moved a second ago)
    await v.verify(c) // evicts b
    t.equal(v.stats.cacheSize, 2)
    const n = v.stats.signatureVerifications
    await v.verify(a)
    t.equal(v.stats.signatureVerifications, n, 'a still cached')
    await v.verify(b)
    t.equal(v.stats.signatureVerifications, n + 1, 'b was evicted')

    // Within a second of its last move, a hit leaves the entry where it is (a move per request
    // would cost a Map delete and set): here a is still the oldest, and c evicts it.
    const near = hsVerifier(makeClock(), { cacheMaxEntries: 2 })
    await near.verify(a)
    await near.verify(b)
    await near.verify(a)
    await near.verify(c)
    const m = near.stats.signatureVerifications
    t.equal(m, 3)
    await near.verify(b)
    t.equal(near.stats.signatureVerifications, m, 'b still cached')
    await near.verify(a)
    t.equal(near.stats.signatureVerifications, m + 1, 'a was evicted')

    const off = hsVerifier(makeClock(), { cacheMaxEntries: 0 })
    await off.verify(a)
    await off.verify(a)
    t.equal(off.stats.signatureVerifications, 2, 'cache disabled with 0')
    off.clearCache()
  })
})
