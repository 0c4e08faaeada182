import { z } from 'zod';
import { GRANT_ID } from '../ids.ts';
import { type BudgetConfig, MODEL_GLOB, type ModelPrice } from '../spend.ts';

// The config's spend keys (issue 63): `pricing:` (USD per million tokens by model glob, over the
// shipped defaults in spend/core/default-prices.ts) and `budgets:`. What each admits is written down
// here; everything else is refused with its key path. Names a budget gives that the config does not
// define are checked in config.ts, where the whole config is seen (they may be the store's).

const PRICE = 'expected a price in USD per million tokens: a number, 0 or more';

/** A finite number, 0 or more. zod refuses NaN and ±Infinity (YAML's .nan, .inf) as not numbers. */
const perMtok = z.number({ error: PRICE }).min(0, PRICE);

export const modelPriceSchema = z.strictObject({
  input_per_mtok: perMtok,
  output_per_mtok: perMtok,
  cached_input_per_mtok: perMtok.optional(),
  cache_write_per_mtok: perMtok.optional(),
}) satisfies z.ZodType<ModelPrice>;

const modelGlob = z
  .string()
  .max(200, 'expected a model name or glob of at most 200 characters')
  .regex(MODEL_GLOB, 'expected a model name or glob: letters, digits and . _ - : / @ +, with * (any run) and ? (one character)');

/** Model glob -> price. The order is kept: among equally specific globs the first listed wins (spend/core/pricing.ts). */
export const pricingSchema = z.record(modelGlob, modelPriceSchema).default({});

const USD = 'expected an amount in USD above 0, such as 5 or 0.5';
const TOKENS = 'expected a whole number of tokens above 0, such as 2000000';

/** `{usd: X}` or `{tokens: N}`: exactly one, each said apart so that the message names the key. */
const limitSchema = z
  .strictObject({
    usd: z.number({ error: USD }).gt(0, USD).optional(),
    tokens: z.number({ error: TOKENS }).int(TOKENS).gt(0, TOKENS).max(Number.MAX_SAFE_INTEGER, TOKENS).optional(),
  })
  .check((ctx) => {
    const given = (['usd', 'tokens'] as const).filter((key) => ctx.value[key] !== undefined);
    if (given.length !== 1) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: given.length === 0 ? 'expected {usd: AMOUNT} or {tokens: COUNT}' : 'expected usd or tokens, not both (two budgets for both)',
      });
    }
  })
  .transform((limit): BudgetConfig['limit'] => (limit.usd !== undefined ? { usd: limit.usd } : { tokens: limit.tokens! }));

/** An agent or grant id, or `*`: each of them counted apart. */
const idOrEach = (what: 'agent' | 'grant') => {
  const message = `expected ${what === 'agent' ? 'an' : 'a'} ${what} id (a-z, 0-9 and -), or "*" for each ${what} apart`;
  return z.string({ error: message }).refine((text) => text === '*' || GRANT_ID.test(text), { message });
};

const WARN = 'expected a fraction between 0 and 1 (exclusive), such as 0.8';

/** One budget as `budgets:` writes it (also a delegated agent's `--budget`, delegation/child-budget.ts). */
export const budgetSchema = z.strictObject({
  agent: idOrEach('agent').optional(),
  grant: idOrEach('grant').optional(),
  // The subject an identity token proved: any text an issuer may put in `sub`.
  end_user: z.string({ error: 'expected an end user (an identity token subject), or "*" for each apart' }).min(1).max(256).optional(),
  limit: limitSchema,
  per: z.enum(['hour', 'day', 'month']),
  warn_at: z.number({ error: WARN }).gt(0, WARN).lt(1, WARN).optional(),
  over: z.enum(['refuse', 'approve']).default('refuse'),
});

/** Each budget named by its place (`budgets[2]`): its name in hints, audit lines and listings. */
export const budgetsSchema = z
  .array(budgetSchema)
  .default([])
  .transform((list): BudgetConfig[] =>
    list.map((budget, i) => ({
      name: `budgets[${i}]`,
      ...(budget.agent !== undefined ? { agent: budget.agent } : {}),
      ...(budget.grant !== undefined ? { grant: budget.grant } : {}),
      ...(budget.end_user !== undefined ? { end_user: budget.end_user } : {}),
      limit: budget.limit,
      per: budget.per,
      ...(budget.warn_at !== undefined ? { warn_at: budget.warn_at } : {}),
      over: budget.over,
    })),
  );
