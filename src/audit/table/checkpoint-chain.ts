import type { ChainSource } from '../checkpoints/bundle.ts';
import { connectAudit, tableUnavailable, type AuditDatabase } from './connection.ts';

// One replica's chain in the table (audit.sink postgres) as `keyway audit export` reads it: its rows
// in seq order, and its signed checkpoints from keyway_audit_checkpoint.

const PAGE = 1000;

type AuditClient = Awaited<ReturnType<typeof connectAudit>>;

/** One connection for one use, its failures (connecting or querying) as audit_unavailable. */
async function withClient<T>(db: AuditDatabase, use: (client: AuditClient) => Promise<T>): Promise<T> {
  let client: AuditClient;
  try {
    client = await connectAudit(db, 'keyway-audit-export');
  } catch (err) {
    throw tableUnavailable(err);
  }
  try {
    return await use(client);
  } catch (err) {
    throw tableUnavailable(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function tableChain(db: AuditDatabase, replica: string): ChainSource {
  return {
    async *lines() {
      let after = 0;
      for (;;) {
        const rows = await withClient(
          db,
          async (client) =>
            (
              await client.query<{ seq: string; line: string }>(
                'SELECT seq::text AS seq, line FROM keyway_audit WHERE replica = $1 AND seq > $2 ORDER BY seq LIMIT $3',
                [replica, String(after), PAGE],
              )
            ).rows,
        );
        for (const row of rows) yield row.line;
        if (rows.length < PAGE) return;
        after = Number(rows.at(-1)!.seq);
      }
    },
    checkpoints: () =>
      withClient(db, async (client) =>
        (await client.query<{ line: string }>('SELECT line FROM keyway_audit_checkpoint WHERE replica = $1 ORDER BY seq', [replica])).rows.map((r) => r.line),
      ),
    add: (checkpoint, line) =>
      withClient(db, async (client) => {
        await client.query('INSERT INTO keyway_audit_checkpoint (replica, seq, line) VALUES ($1, $2, $3) ON CONFLICT (replica, seq) DO NOTHING', [
          replica,
          String(checkpoint.seq),
          line,
        ]);
      }),
  };
}

/** The replicas whose chains the table holds. */
export function tableChains(db: AuditDatabase): Promise<string[]> {
  return withClient(db, async (client) =>
    (await client.query<{ replica: string }>('SELECT replica FROM keyway_audit_head ORDER BY replica')).rows.map((r) => r.replica),
  );
}
