import type { NatsConnection } from '@nats-io/transport-node';
import { auditProofSubject } from '@alert-hub/core';

/**
 * Plays the router while `ask` runs: every proof request `agency` makes of the audit log `log`
 * is answered on `nc` with `reply`, verbatim. The subscription is in place before `ask` starts
 * and gone when it ends.
 */
export async function answeringProofs<T>(
  nc: NatsConnection,
  log: string,
  agency: string,
  reply: string,
  ask: () => Promise<T>,
): Promise<T> {
  const sub = nc.subscribe(auditProofSubject(log, agency), {
    callback: (_err, m) => {
      m.respond(reply);
    },
  });
  await nc.flush();
  try {
    return await ask();
  } finally {
    sub.unsubscribe();
  }
}
