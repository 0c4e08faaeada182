// The port a contained command dialled, read from its namespace's conntrack table (contain/original-port.ts).
import { describe, expect, it } from 'vitest';
import { originalPort } from '../../src/contain/original-port.ts';

// As /proc/net/nf_conntrack shows them in the namespace: the original tuple, then the reply's.
const TABLE = [
  'ipv4     2 udp      17 29 src=127.0.0.1 dst=198.18.0.9 sport=40000 dport=53 src=127.0.0.1 dst=127.0.0.1 sport=35001 dport=40000 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=198.18.0.1 sport=54570 dport=8443 src=127.0.0.1 dst=127.0.0.1 sport=9999 dport=54570 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=198.18.0.1 sport=54571 dport=5432 src=127.0.0.1 dst=127.0.0.1 sport=9999 dport=54571 [ASSURED] mark=0 zone=0 use=2',
  '',
].join('\n');

describe('the port a redirected connection was dialled to', () => {
  it('is the original destination port of the entry whose reply comes from the listener to the client', () => {
    expect(originalPort(TABLE, 9999, 54570)).toBe(8443);
    expect(originalPort(TABLE, 9999, 54571)).toBe(5432);
  });

  it('is unknown for a connection the table does not hold, another listener, or UDP', () => {
    expect(originalPort(TABLE, 9999, 1)).toBeUndefined();
    expect(originalPort(TABLE, 8888, 54570)).toBeUndefined();
    expect(originalPort(TABLE, 35001, 40000)).toBeUndefined();
    expect(originalPort('', 9999, 54570)).toBeUndefined();
  });
});
