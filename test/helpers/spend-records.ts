// Spend and budget records planted in a real store, as the spend ledger writes them: through the
// store's own update(), adding to what a record already holds (the ledger's records are additive:
// each process adds what it counted). For the tests of what reads them (keyway spend, GET
// /api/spend, the dashboard, doctor) while the ledger itself is built apart.
import type { CredentialStore } from '../../src/credentials/store/index.ts';
import { budgetRecordId, type BudgetRecord, type SpendRecord, spendRecordId } from '../../src/spend/core/records.ts';

export interface PlantedSpend extends Partial<SpendRecord> {
  hour: string;
  agent: string | null;
  grant: string;
  end_user?: string | null;
  model: string | null;
}

const ZERO: SpendRecord = {
  input_tokens: 0,
  output_tokens: 0,
  cached_input_tokens: 0,
  cache_write_tokens: 0,
  cost_usd: 0,
  requests: 0,
  unpriced: 0,
  unknown: 0,
  partial: 0,
  fallback: 0,
  estimated: 0,
};

export async function plantSpend(store: Pick<CredentialStore, 'update'>, entries: readonly PlantedSpend[]): Promise<void> {
  await store.update((draft) => {
    for (const e of entries) {
      const id = spendRecordId(e.hour, e.agent, e.grant, e.end_user ?? null, e.model);
      const had = draft.get<SpendRecord>(id) ?? ZERO;
      const next = { ...had };
      for (const key of Object.keys(ZERO) as Array<keyof SpendRecord>) next[key] = had[key] + (e[key] ?? 0);
      draft.set(id, next);
    }
  });
}

export async function plantBudget(store: Pick<CredentialStore, 'update'>, key: string, period: string, add: Partial<BudgetRecord>): Promise<void> {
  await store.update((draft) => {
    const id = budgetRecordId(key, period);
    const had = draft.get<BudgetRecord>(id) ?? { tokens: 0, usd: 0 };
    draft.set(id, { tokens: had.tokens + (add.tokens ?? 0), usd: had.usd + (add.usd ?? 0) });
  });
}
