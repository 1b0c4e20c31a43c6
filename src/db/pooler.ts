// Supabase's connection pooler (Supavisor) serves two modes: session (port 5432) and transaction
// (port 6543). Through the transaction pooler every statement may land on another server session,
// so what lives in a session does not work there: the migration runner's advisory lock and the
// LISTEN behind /events, and named prepared statements (the service then sends its hot lookups
// unprepared: open-database.ts). Transactions (every read and write of the service, each one a single
// transaction with its `set local` claims) work through either.

export const TRANSACTION_POOLER_PORT = '6543'

/** Whether DATABASE_URL points at the transaction pooler (its port). */
export function isTransactionPooler (databaseUrl: string): boolean {
  try {
    return new URL(databaseUrl).port === TRANSACTION_POOLER_PORT
  } catch {
    return false
  }
}

/** The boot warning for a DATABASE_URL that points at the transaction pooler, or null. */
export function poolerWarning (databaseUrl: string): string | null {
  if (!isTransactionPooler(databaseUrl)) return null
  return 'DATABASE_URL uses port 6543, Supabase\'s transaction pooler: reads and writes work through it, but the migration lock (advisory lock) and /events (LISTEN) need a session connection; use the direct connection or the session pooler (port 5432) (README, "Poolers")'
}
