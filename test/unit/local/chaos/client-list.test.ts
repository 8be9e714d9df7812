import { describe, expect, it } from 'vitest';
import { clientPort, parseClientList } from '../../../../local/chaos/client-list.ts';
import { portsOfInodes } from '../../../../local/chaos/process-sockets.ts';

describe('parseClientList', () => {
  it('parses one record per line and finds the client-side port', () => {
    const text =
      'id=7 addr=127.0.0.1:41564 laddr=127.0.0.1:23999 fd=8 name=kl-subscriber age=3 sub=1 omem=0 cmd=subscribe\n' +
      'id=9 addr=[::1]:50000 name= omem=20512 flags=P\n\n';
    const clients = parseClientList(text);
    expect(clients).toHaveLength(2);
    expect(clients[0]).toMatchObject({ id: '7', name: 'kl-subscriber', omem: '0', cmd: 'subscribe' });
    expect(clients[1]).toMatchObject({ id: '9', name: '', omem: '20512' });
    expect(clients.map(clientPort)).toEqual([41564, 50000]);
    expect(clientPort({})).toBeUndefined();
  });
});

describe('portsOfInodes', () => {
  it('returns the local ports of the rows whose inode belongs to the process', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:A2DC 0100007F:5DC0 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0 20 4 30 10 -1',
      '   1: 0100007F:A2DD 0100007F:5DC1 01 00000000:00000000 00:00000000 00000000  1000        0 999999 1 0 20 4 30 10 -1',
    ].join('\n');
    expect(portsOfInodes(table, new Set(['123456']))).toEqual([0xa2dc]);
    expect(portsOfInodes(table, new Set())).toEqual([]);
  });
});
