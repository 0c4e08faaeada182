// The test stand the fuzz and smuggling suites share: two raw upstreams (plain HTTP for an
// allow_http grant, TLS for an intercepted one), keyway in a child process on a seeded home with
// unmatched: deny (no fuzzed name is ever tunnelled anywhere), its audit log read as it grows, and
// the ledger that joins the two.

import { readFileSync } from 'node:fs';
import { CANARY } from '../../helpers/fixtures.ts';
import { slack } from '../../helpers/load.ts';
import { startProxy } from '../../helpers/keyway.ts';
import { AuditTail } from './audit-tail.ts';
import { startKeywayChild, type KeywayChild } from './child.ts';
import { FramingLedger } from './ledger.ts';
import { startRawUpstream, type RawUpstream } from './raw-upstream.ts';

export interface Stand {
  plain: RawUpstream;
  tls: RawUpstream;
  keyway: KeywayChild;
  keywayCa: string;
  audit: AuditTail;
  ledger: FramingLedger;
  /** Moves what the upstreams and the audit log recorded into the ledger and matches it. */
  settle(final?: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface StandOptions {
  /**
   * audit.refusal_budget (default keyway's own, 20). Past it, identical refusals in an interval are
   * folded into one summary line written when the interval ends; a suite that counts audit lines
   * per connection raises it so every refusal has a line of its own.
   */
  refusalBudget?: number;
}

export async function startStand(options: StandOptions = {}): Promise<Stand> {
  const [plain, tls] = await Promise.all([startRawUpstream({ tls: false }), startRawUpstream({ tls: true })]);
  // startProxy writes the config and seeds the grants; the proxy that runs is the child below.
  const seeded = await startProxy({
    config: {
      proxy: { unmatched: 'deny', upstream_timeout: '5s' },
      // One file for the whole run, so the audit tail never has to follow a rotation.
      audit: { max_bytes: '16GiB', ...(options.refusalBudget === undefined ? {} : { refusal_budget: options.refusalBudget }) },
    },
    grants: [
      { id: 'plain', type: 'bearer', domains: ['plain.example.test'], secret: CANARY, allow_http: true },
      { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
    ],
  });
  await seeded.stop();
  const keyway = await startKeywayChild(seeded.home, seeded.env);
  const audit = new AuditTail(seeded.auditPath);
  const ledger = new FramingLedger();
  return {
    plain,
    tls,
    keyway,
    keywayCa: readFileSync(seeded.caPath, 'utf8'),
    audit,
    ledger,
    async settle(final = false) {
      const gather = () => {
        for (const upstream of [plain, tls]) {
          const { received, failures } = upstream.drain();
          ledger.addUpstream(received, failures);
        }
        ledger.addAudit(audit.read());
      };
      // Audit lines reach the file some milliseconds after their response ends (batched writes).
      await sleep(final ? 500 : 60);
      gather();
      if (final) {
        // The last matches may trail on a busy machine: wait for them (bounded) before judging.
        const deadline = Date.now() + slack(2_000, 15_000);
        for (ledger.settle(false, Number.POSITIVE_INFINITY); ledger.unmatched > 0 && Date.now() < deadline; ) {
          await sleep(100);
          gather();
          ledger.settle(false, Number.POSITIVE_INFINITY);
        }
      }
      ledger.settle(final);
    },
    async stop() {
      await keyway.stop();
      await Promise.all([plain.close(), tls.close()]);
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
