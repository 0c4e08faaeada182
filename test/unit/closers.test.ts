import { describe, expect, it } from 'vitest';
import { Closers } from '../../src/app/closers.ts';

// What start undoes on a failure and stop at its end: every part, newest first, none left open.
describe('Closers', () => {
  it('closes newest first, each after the one before has settled', async () => {
    const closers = new Closers();
    const order: string[] = [];
    closers.add('store', () => order.push('store'));
    closers.add('audit log', async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      order.push('audit log');
    });
    closers.add('proxy listener', () => order.push('proxy listener'));
    expect(await closers.closeAll()).toEqual([]);
    expect(order).toEqual(['proxy listener', 'audit log', 'store']);
  });

  it('closes the rest when one fails, and names the ones that failed', async () => {
    const closers = new Closers();
    const closed: string[] = [];
    closers.add('store', () => closed.push('store'));
    closers.add('upstream client', () => Promise.reject(new Error('refused')));
    closers.add('usage recorder', () => {
      throw new Error('thrown');
    });
    expect(await closers.closeAll()).toEqual(['usage recorder', 'upstream client']);
    expect(closed).toEqual(['store']);
  });

  it('closes each part once: a later call closes only what was added since', async () => {
    const closers = new Closers();
    let count = 0;
    closers.add('store', () => count++);
    await closers.closeAll();
    await closers.closeAll();
    expect(count).toBe(1);
  });
});
