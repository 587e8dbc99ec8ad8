import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port {@link freePort} picks: above the ports services commonly listen on. */
const LOWEST = 10_000;

/**
 * The first port the kernel hands out by itself (to `listen(0)` and to every outgoing
 * connection), from `/proc/sys/net/ipv4/ip_local_port_range`; Linux's default when unreadable.
 */
function ephemeralStart(): number {
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    if (Number.isInteger(first) && first > LOWEST + 1000) return first;
  } catch {
    // not Linux: the default range
  }
  return 32_768;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A free loopback TCP port below the kernel's ephemeral range, picked at random and bound once
 * to check it. Below that range no port the kernel picks for someone else (another listener's
 * `listen(0)`, the local end of any outgoing connection) can take it while it is briefly not
 * listening: between this check and the server's own bind, or while a test has killed the
 * server that will be restarted on it. Another process picking the same port at random remains
 * possible (about one chance in 20,000 per pick); starts that meet it try again on another port.
 */
export async function freePort(): Promise<number> {
  const top = ephemeralStart();
  for (let i = 0; i < 64; i++) {
    const port = LOWEST + Math.floor(Math.random() * (top - LOWEST));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port found between ${LOWEST} and ${top}`);
}

/** True when a listener failed because its address was taken (`EADDRINUSE` in any wording). */
export function addressInUse(message: string): boolean {
  return /address already in use|EADDRINUSE/i.test(message);
}
