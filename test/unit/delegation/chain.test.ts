import { describe, expect, it } from 'vitest';
import { chainOf, type ChainNode, type ChildLink, descendantsOf, linkChildren } from '../../../src/delegation/chain.ts';

// A child resolved against its parent as the parent stands: cut to its grants and expiry, or gone.

const key = (n: number) => Buffer.alloc(32, n);
const node = (id: string, grants: string[] | undefined, n: number, expiresAt?: number): ChainNode => ({
  id,
  grants: grants === undefined ? undefined : new Set(grants),
  keySha256: key(n),
  ...(expiresAt !== undefined ? { expiresAt } : {}),
});
const link = (parent: string, n: number): ChildLink => ({ parent, parentKeySha256: key(n).toString('hex') });

describe('linkChildren', () => {
  it("cuts a child to its parent's grants and expiry, and lists its parents root first", () => {
    const agents = new Map([
      ['root', node('root', ['github'], 1)],
      ['kid', node('kid', ['github', 'openai'], 2, 5_000)],
      ['grandkid', node('grandkid', undefined, 3, 9_000)],
    ]);
    const out = linkChildren(
      agents,
      new Map([
        ['kid', link('root', 1)],
        ['grandkid', link('kid', 2)],
      ]),
    );
    expect([...out.get('kid')!.grants!]).toEqual(['github']);
    expect(out.get('kid')!.parents).toEqual(['root']);
    expect(out.get('grandkid')).toMatchObject({ parents: ['root', 'kid'], expiresAt: 5_000 });
    expect([...out.get('grandkid')!.grants!]).toEqual(['github']);
    expect(out.get('root')!.parents).toBeUndefined();
    // The input is left as it was.
    expect([...agents.get('kid')!.grants!]).toEqual(['github', 'openai']);
  });

  it('drops a child whose parent is gone or holds another key, and every child below it', () => {
    const agents = new Map([
      ['root', node('root', undefined, 1)],
      ['kid', node('kid', undefined, 2)],
      ['grandkid', node('grandkid', undefined, 3)],
      ['orphan', node('orphan', undefined, 4)],
    ]);
    const links = new Map([
      ['kid', link('root', 9)],
      ['grandkid', link('kid', 2)],
      ['orphan', link('nobody', 1)],
    ]);
    expect([...linkChildren(agents, links).keys()]).toEqual(['root']);
  });

  it('drops a loop and a chain deeper than MAX_DEPTH', () => {
    const loop = new Map([
      ['a', node('a', undefined, 1)],
      ['b', node('b', undefined, 2)],
    ]);
    expect(
      linkChildren(
        loop,
        new Map([
          ['a', link('b', 2)],
          ['b', link('a', 1)],
        ]),
      ).size,
    ).toBe(0);
    const ids = ['r', 'c1', 'c2', 'c3', 'c4'];
    const deep = new Map(ids.map((id, i) => [id, node(id, undefined, i + 1)]));
    const links = new Map(ids.slice(1).map((id, i) => [id, link(ids[i]!, i + 1)]));
    expect([...linkChildren(deep, links).keys()]).toEqual(['r', 'c1', 'c2', 'c3']);
  });
});

describe('chainOf and descendantsOf', () => {
  it('names the chain of a delegated agent only', () => {
    expect(chainOf({ id: 'kid', parents: ['root'] })).toEqual(['root', 'kid']);
    expect(chainOf({ id: 'root' })).toBeUndefined();
  });

  it('finds every agent below one, and no other', () => {
    const records = [{ id: 'root' }, { id: 'kid', parent: 'root' }, { id: 'grandkid', parent: 'kid' }, { id: 'other', parent: 'elsewhere' }];
    expect(descendantsOf(records, 'root')).toEqual(['kid', 'grandkid']);
    expect(descendantsOf(records, 'grandkid')).toEqual([]);
  });
});
