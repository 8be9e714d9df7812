/**
 * Parses CLIENT LIST output (one client per line, `name=value` pairs separated by spaces; a value
 * never contains a space) into one record per client. Pure.
 */
export type ClientInfo = Readonly<Record<string, string>>;

export function parseClientList(text: string): ClientInfo[] {
  const clients: ClientInfo[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const client: Record<string, string> = {};
    for (const pair of trimmed.split(' ')) {
      const at = pair.indexOf('=');
      if (at > 0) client[pair.slice(0, at)] = pair.slice(at + 1);
    }
    clients.push(client);
  }
  return clients;
}

/** The client-side port of a CLIENT LIST entry (`addr=host:port`, IPv6 hosts included). */
export function clientPort(client: ClientInfo): number | undefined {
  const addr = client.addr;
  if (addr === undefined) return undefined;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return Number.isInteger(port) && port > 0 ? port : undefined;
}
