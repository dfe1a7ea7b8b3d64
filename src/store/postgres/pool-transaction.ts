import type pg from 'pg';

/**
 * Runs `work` on one pooled client that `work` takes into a transaction itself; when it throws, the transaction
 * is rolled back, and a client whose ROLLBACK failed is released as broken, so the pool discards it instead of
 * handing out a connection in an unknown state.
 */
export async function withPoolClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (err) {
    await client.query('ROLLBACK').catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e));
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Runs `work` on one pooled client inside BEGIN … COMMIT (ROLLBACK when it throws: `withPoolClient`). */
export async function inPoolTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withPoolClient(pool, async (client) => {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  });
}
