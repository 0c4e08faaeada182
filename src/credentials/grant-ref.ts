import type { GrantType } from '../config/index.ts';

/**
 * A grant as the providers need it: which one, and of what type. Not the whole Grant, so that
 * providers do not depend on how grants are built (grants.ts imports them).
 */
export interface GrantRef {
  readonly id: string;
  readonly type: GrantType;
}
