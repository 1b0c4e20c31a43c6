import { z } from 'zod'

// One schema over the environment, parsed once at boot. Nothing else reads process.env.

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v)
const optionalString = z.preprocess(emptyToUndefined, z.string().optional())
// z.url() alone takes `localhost:5678` (scheme "localhost:"): require an absolute http(s) URL.
const httpUrl = (example: string) => z.string().refine((v) => {
  try {
    const u = new URL(v)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && /^https?:\/\//i.test(v)
  } catch {
    return false
  }
}, `must be an absolute http(s) URL, e.g. ${example}`)
const optionalUrl = z.preprocess(emptyToUndefined, httpUrl('https://<project>.supabase.co').optional())
const intWithDefault = (def: number, min: number, max: number) =>
  z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).default(def))

export const configSchema = z.object({
  NODE_ENV: z.preprocess(emptyToUndefined, z.enum(['development', 'production', 'test']).default('development')),
  PORT: intWithDefault(3000, 0, 65535),
  HOST: z.preprocess(emptyToUndefined, z.string().default('127.0.0.1')),
  LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  DATABASE_URL: z.preprocess(emptyToUndefined, z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL').optional()),
  DATABASE_POOL_MAX: intWithDefault(10, 1, 200),
  // Longest wait for a database connection (a free pool slot, then the connect): beyond, 503.
  DATABASE_CONNECT_TIMEOUT_MS: intWithDefault(5000, 100, 60_000),
  // Postgres statement_timeout of request queries (the client gives up 5 s later if the server is silent).
  DATABASE_STATEMENT_TIMEOUT_MS: intWithDefault(15_000, 100, 600_000),
  // Each PostgREST call in Supabase mode.
  SUPABASE_TIMEOUT_MS: intWithDefault(15_000, 100, 120_000),
  // Each Redis command of the rate limiter (beyond, the request is served without the shared count).
  REDIS_TIMEOUT_MS: intWithDefault(1000, 50, 30_000),
  PGLITE_DIR: z.preprocess(emptyToUndefined, z.string().default('./.data/pglite')),
  SUPABASE_URL: optionalUrl,
  SUPABASE_JWT_SECRET: z.preprocess(emptyToUndefined, z.string().min(32, 'must be at least 32 characters').optional()),
  SUPABASE_JWKS_URL: optionalUrl,
  SUPABASE_ANON_KEY: optionalString,
  SUPABASE_SERVICE_ROLE_KEY: optionalString,
  N8N_API_URL: z.preprocess(emptyToUndefined, httpUrl('http://127.0.0.1:5678/api/v1').default('http://127.0.0.1:5678/api/v1')),
  N8N_API_KEY: optionalString,
  N8N_TIMEOUT_MS: intWithDefault(10_000, 100, 120_000),
  N8N_RETRIES: intWithDefault(3, 0, 10),
  // 64: the smallest value that met P1 (100 workflows at 50 ms latency in ≤ 0.3 s) in bench/sync.ts
  N8N_CONCURRENCY: intWithDefault(64, 1, 256),
  CRON_SECRET: z.preprocess(emptyToUndefined, z.string().min(32, 'must be at least 32 characters').optional()),
  REDIS_URL: z.preprocess(emptyToUndefined, z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional()),
  RATE_LIMIT_MAX: intWithDefault(600, 1, 1_000_000),
  CORS_ORIGINS: z.preprocess(emptyToUndefined, z.string().optional()),
  BODY_LIMIT_BYTES: intWithDefault(1_048_576, 1024, 50 * 1_048_576),
  IDEMPOTENCY_TTL_HOURS: intWithDefault(24, 1, 24 * 30),
  CLEANUP_GRACE_MINUTES: intWithDefault(60, 0, 60 * 24 * 30),
  SYNC_LOG_RETENTION_DAYS: intWithDefault(30, 1, 3650),
  EXECUTION_RETENTION_DAYS: intWithDefault(90, 1, 3650),
  SHUTDOWN_TIMEOUT_MS: intWithDefault(10_000, 100, 120_000),
  // Off by default: X-Forwarded-For is the client's to choose unless a proxy we trust sets it.
  TRUST_PROXY: z.preprocess(emptyToUndefined, z.string().regex(/^(true|false|\d{1,2}|[0-9a-fA-F.:/]+(\s*,\s*[0-9a-fA-F.:/]+)*|loopback|linklocal|uniquelocal)$/, 'must be true, false, a hop count (e.g. 1) or comma-separated proxy addresses/CIDRs (e.g. 10.0.0.0/8,127.0.0.1)').default('false')),
  // The live tail of n8n's executions (src/sync/live-tail.ts): ms between ticks; 0 turns it off.
  LIVE_SYNC_INTERVAL_MS: intWithDefault(2000, 0, 3_600_000),
  // The leader's scheduled cleanup (same rules as POST /cleanup); 0 turns it off.
  CLEANUP_INTERVAL_MINUTES: intWithDefault(1440, 0, 525_600),
  // GET /workflows answers kept in memory while nothing on them changed (Postgres modes); 0 turns it off.
  WORKFLOW_LIST_CACHE_MB: intWithDefault(16, 0, 4096),
  // Where POST /workflows/{id}/run calls n8n's production webhooks; default: N8N_API_URL's origin + /webhook.
  N8N_WEBHOOK_URL: optionalUrl
})

export type Env = z.infer<typeof configSchema>

export interface Config extends Env {
  corsOrigins: string[]
  issuer: string | undefined
  jwksUrl: string | undefined
  // true when no JWT secret or JWKS was configured and a development secret was generated
  devAuth: boolean
  /** Fastify's trustProxy from TRUST_PROXY: false, true, a hop count or addresses. */
  trustProxy: boolean | number | string[]
  /** N8N_WEBHOOK_URL, or N8N_API_URL's origin + '/webhook' (no trailing slash). */
  n8nWebhookUrl: string
}

export function parseTrustProxy (v: string): boolean | number | string[] {
  if (v === 'true') return true
  if (v === 'false') return false
  if (/^\d+$/.test(v)) return Number(v)
  return v.split(',').map((s) => s.trim()).filter(Boolean)
}

export class ConfigError extends Error {
  readonly issues: string[]
  constructor (issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

export function loadConfig (env: Record<string, string | undefined> = process.env, generateSecret: (env: Env) => string = defaultSecret): Config {
  const parsed = configSchema.safeParse(env)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`))
  }
  const e = parsed.data
  const base = e.SUPABASE_URL?.replace(/\/+$/, '')
  const issuer = base ? `${base}/auth/v1` : undefined
  const jwksUrl = e.SUPABASE_JWKS_URL ?? (base ? `${base}/auth/v1/.well-known/jwks.json` : undefined)
  let devAuth = false
  let secret = e.SUPABASE_JWT_SECRET
  if (!secret && !jwksUrl) {
    if (e.NODE_ENV === 'production') {
      throw new ConfigError(['SUPABASE_JWT_SECRET or SUPABASE_URL (or SUPABASE_JWKS_URL): one is required when NODE_ENV=production, so that access tokens can be verified'])
    }
    secret = generateSecret(e)
    devAuth = true
  }
  return {
    ...e,
    SUPABASE_JWT_SECRET: secret,
    corsOrigins: e.CORS_ORIGINS ? e.CORS_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean) : [],
    issuer,
    jwksUrl,
    devAuth,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    n8nWebhookUrl: (e.N8N_WEBHOOK_URL ?? `${new URL(e.N8N_API_URL).origin}/webhook`).replace(/\/+$/, '')
  }
}

function defaultSecret (): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
}

export type StoreMode = 'postgres' | 'supabase' | 'embedded'

export interface StoreModeChoice {
  mode: StoreMode
  /** Why this mode, for the boot log. */
  reason: string
  /** Things an operator should know at boot (missing keys, ignored settings). */
  warnings: string[]
}

/**
 * Where the data lives: `DATABASE_URL` → Postgres; otherwise `SUPABASE_URL` + `SUPABASE_ANON_KEY` →
 * Supabase through supabase-js; otherwise the embedded PGlite.
 */
export function selectStoreMode (c: Pick<Config, 'DATABASE_URL' | 'SUPABASE_URL' | 'SUPABASE_ANON_KEY' | 'SUPABASE_SERVICE_ROLE_KEY' | 'PGLITE_DIR'>): StoreModeChoice {
  const warnings: string[] = []
  if (c.DATABASE_URL) {
    if (c.SUPABASE_ANON_KEY || c.SUPABASE_SERVICE_ROLE_KEY) {
      warnings.push('DATABASE_URL is set, so SUPABASE_ANON_KEY / SUPABASE_SERVICE_ROLE_KEY are not used for data (Postgres mode wins); SUPABASE_URL still serves token verification')
    }
    return { mode: 'postgres', reason: 'DATABASE_URL is set: server Postgres through pg (migrations are applied at boot)', warnings }
  }
  if (c.SUPABASE_URL && c.SUPABASE_ANON_KEY) {
    if (!c.SUPABASE_SERVICE_ROLE_KEY) {
      warnings.push('SUPABASE_SERVICE_ROLE_KEY is not set: the cron routes (POST /sync/all, POST /cleanup, the cron side of POST /workflow-sync and GET /sync/logs|stats) answer 503 until it is set, and so does everything a user does that the service records (creating, changing, (de)activating, redeploying workflows, syncs, Idempotency-Key requests): a user\'s token may write only the fields the user authors, so the service records the rest with its own key. User reads work')
    }
    return { mode: 'supabase', reason: 'SUPABASE_URL and SUPABASE_ANON_KEY are set and DATABASE_URL is not: Supabase through supabase-js (the schema is applied with `supabase db push`, not at boot)', warnings }
  }
  if (c.SUPABASE_URL && !c.SUPABASE_ANON_KEY) {
    warnings.push('SUPABASE_URL is set without SUPABASE_ANON_KEY: it serves token verification only; set SUPABASE_ANON_KEY (and SUPABASE_SERVICE_ROLE_KEY) to keep the data in the Supabase project, or DATABASE_URL for its Postgres')
  } else if (!c.SUPABASE_URL && c.SUPABASE_ANON_KEY) {
    warnings.push('SUPABASE_ANON_KEY is set without SUPABASE_URL: it is not used')
  }
  const where = c.PGLITE_DIR === 'memory' ? 'in memory (data is lost at exit)' : `in ${c.PGLITE_DIR}`
  return { mode: 'embedded', reason: `neither DATABASE_URL nor SUPABASE_URL + SUPABASE_ANON_KEY is set: embedded PGlite ${where}`, warnings }
}
