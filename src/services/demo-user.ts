// The demo user of development mode (no SUPABASE_JWT_SECRET / SUPABASE_URL: a generated secret).
// Its token is printed at boot for Swagger UI and handed to the dashboard by GET /dashboard/config.json.
import { SignJWT } from 'jose'

export const DEMO_USER_ID = '00000000-0000-4000-8000-00000000d3e0'
export const DEMO_TOKEN_LIFETIME_S = 12 * 3600

export async function demoToken (secret: string): Promise<string> {
  return new SignJWT({ role: 'authenticated', email: 'demo@example.com', aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(DEMO_USER_ID)
    .setIssuedAt()
    .setExpirationTime(`${DEMO_TOKEN_LIFETIME_S}s`)
    .sign(new TextEncoder().encode(secret))
}
