// The Store contract on server Postgres (pg pool, RLS transactions, advisory locks).
import t from 'tap'
import { PostgresStore } from '../../src/store/postgres-store.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { storeContract } from './store-contract.ts'

storeContract(t, 'server Postgres', async () => {
  const tdb = await createTestDatabase('ws_store')
  const store = new PostgresStore(tdb.db)
  return { store, db: tdb.db, close: () => tdb.drop() }
})
