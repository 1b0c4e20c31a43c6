import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.ts'

t.test('bad configuration names the variable and what is wrong', async (t) => {
  const bad = (env: Record<string, string>) => {
    try {
      loadConfig(env)
    } catch (err) {
      t.ok(err instanceof ConfigError)
      return (err as ConfigError).message
    }
    t.fail('expected a ConfigError')
    return ''
  }
  t.match(bad({ PORT: 'eighty' }), /PORT: /)
  t.match(bad({ CRON_SECRET: 'short' }), /CRON_SECRET: must be at least 32 characters/)
  t.match(bad({ DATABASE_URL: 'mysql://x' }), /DATABASE_URL: must be a postgres/)
  t.match(bad({ N8N_API_URL: 'not a url' }), /N8N_API_URL: /)
  // `localhost:5678` is a valid URL to WHATWG (scheme "localhost:"): still refused, naming the variable.
  t.match(bad({ N8N_API_URL: 'localhost:5678' }), /N8N_API_URL: must be an absolute http\(s\) URL, e\.g\. http:\/\/127\.0\.0\.1:5678\/api\/v1/)
  t.match(bad({ N8N_API_URL: 'ftp://n8n.example/api/v1' }), /N8N_API_URL: must be an absolute http\(s\) URL/)
  t.match(bad({ N8N_API_URL: '/api/v1' }), /N8N_API_URL: /)
  t.match(bad({ SUPABASE_URL: 'abc.supabase.co' }), /SUPABASE_URL: must be an absolute http\(s\) URL/)
  t.equal(loadConfig({ N8N_API_URL: 'https://n8n.example.com/api/v1' }).N8N_API_URL, 'https://n8n.example.com/api/v1')
  t.match(bad({ LOG_LEVEL: 'loud' }), /LOG_LEVEL: /)
  t.match(bad({ REDIS_URL: 'http://x' }), /REDIS_URL: must be a redis/)
  const two = bad({ PORT: '-1', SUPABASE_JWT_SECRET: 'tiny' })
  t.match(two, /PORT: /)
  t.match(two, /SUPABASE_JWT_SECRET: must be at least 32 characters/, 'every problem is listed at once')
})

t.test('production refuses to start without a way to verify tokens', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /SUPABASE_JWT_SECRET or SUPABASE_URL/)
  const c = loadConfig({ NODE_ENV: 'production', SUPABASE_URL: 'https://abc.supabase.co' })
  t.equal(c.issuer, 'https://abc.supabase.co/auth/v1')
  t.equal(c.jwksUrl, 'https://abc.supabase.co/auth/v1/.well-known/jwks.json')
  t.equal(c.devAuth, false)
})

t.test('development without auth generates a secret and says so', async (t) => {
  const c = loadConfig({}, () => 'generated-secret-generated-secret-xx')
  t.equal(c.devAuth, true)
  t.equal(c.SUPABASE_JWT_SECRET, 'generated-secret-generated-secret-xx')
  t.equal(c.PORT, 3000)
  t.equal(c.HOST, '127.0.0.1')
  t.equal(c.N8N_API_URL, 'http://127.0.0.1:5678/api/v1')
  t.equal(c.RATE_LIMIT_MAX, 600)
  t.equal(c.CLEANUP_GRACE_MINUTES, 60)
  t.equal(c.SYNC_LOG_RETENTION_DAYS, 30)
  t.equal(c.EXECUTION_RETENTION_DAYS, 90)
  t.same(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example', SUPABASE_JWT_SECRET: 'x'.repeat(32) }).corsOrigins, ['https://a.example', 'https://b.example'])
  t.equal(loadConfig({ SUPABASE_JWKS_URL: 'https://keys.example/jwks.json' }).devAuth, false, 'a JWKS alone is enough')
})
