import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A leaf node of the hub written by hand: what an agency holding its leaf certificate can run
 * instead of nats-server. It speaks the leaf-node protocol (INFO, TLS, CONNECT, HMSG) and
 * publishes whatever it likes, reply subjects included.
 */
export async function fakeLeaf(o: {
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  account: string;
}): Promise<{
  /**
   * `status`: what follows `NATS/1.0` on the header's first line (`100 FlowControl Request`,
   * `100 Idle Heartbeat`), as JetStream writes its control messages.
   */
  publish(
    subject: string,
    reply: string,
    headers: Record<string, string>,
    payload: Uint8Array,
    status?: string,
  ): void;
  /** Tells the hub the leaf has interest in `subject` (`LS+`): the hub sends it what matches. */
  subscribe(subject: string): void;
  /** The requests the hub sent it (a message with a reply), in order. */
  requests(): { subject: string; reply: string }[];
  received: string[];
  close(): void;
}> {
  const raw = netConnect(o.port, '127.0.0.1');
  await new Promise<string>((resolve, reject) => {
    let buf = '';
    const on = (d: Buffer) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        raw.off('data', on);
        resolve(buf.slice(0, i));
      }
    };
    raw.on('data', on);
    raw.once('error', reject);
  });
  const sock: TLSSocket = tlsConnect({
    socket: raw,
    ca: readFileSync(o.caFile),
    cert: readFileSync(o.certFile),
    key: readFileSync(o.keyFile),
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  const received: string[] = [];
  sock.on('data', (d: Buffer) => {
    const s = d.toString('latin1');
    received.push(s);
    if (/(^|\n)PING\r\n/.test(s)) sock.write('PONG\r\n');
  });
  sock.on('error', () => undefined);
  sock.write(
    `CONNECT ${JSON.stringify({ server_id: 'NFAKELEAFATTACKER34', name: 'fake-leaf', headers: true, remote_account: o.account })}\r\nPING\r\n`,
  );
  await new Promise((r) => setTimeout(r, 500));
  return {
    received,
    publish(subject, reply, headers, payload, status) {
      const hdr =
        `NATS/1.0${status ? ` ${status}` : ''}\r\n` +
        Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        '\r\n';
      const h = Buffer.from(hdr, 'latin1');
      sock.write(
        `HMSG ${subject}${reply ? ` ${reply}` : ''} ${h.length} ${h.length + payload.length}\r\n`,
      );
      sock.write(Buffer.concat([h, Buffer.from(payload), Buffer.from('\r\n')]));
    },
    subscribe(subject) {
      sock.write(`LS+ ${subject}\r\n`);
    },
    requests() {
      // [LH]MSG <subject> [+ <reply> <queues...> | <reply>] [<header size>] <size>; a request
      // through the hub's service import carries a header (Nats-Request-Info): HMSG
      return [...received.join('').matchAll(/^[LH]MSG (\S+) (?:\+ )?(_R_\.\S+)/gm)].map((m) => ({
        subject: m[1]!,
        reply: m[2]!,
      }));
    },
    close: () => sock.destroy(),
  };
}
