/**
 * Freezes a value and everything it holds. Used where one parsed value is shared (the config, the
 * store's records): a caller that mutates it gets an error instead of silently diverging.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
