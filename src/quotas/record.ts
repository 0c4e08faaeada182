// A request quota's count for one UTC day, shared by every keyway process on the store, as
// `quota:<kind>:<agent>:<grant>` (`_` where the scope has none). `reserved` is what the processes
// have taken in blocks (quotas/ledger.ts): never more than the quota.

export const QUOTA_PREFIX = 'quota:';

export interface QuotaRecord {
  /** YYYY-MM-DD (UTC): a record of another day counts nothing. */
  day: string;
  /** Requests taken (in blocks) by every process. */
  reserved: number;
  /** Body bytes counted (request bodies sent, response bodies received), added by each process every second. */
  bytes?: number | undefined;
}

export const quotaRecordId = (kind: string, agent: string | undefined, grant: string | undefined): string =>
  `${QUOTA_PREFIX}${kind}:${agent ?? '_'}:${grant ?? '_'}`;
