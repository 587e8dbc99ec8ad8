import { rate, rawEd25519 } from './core.js';

/**
 * The crypto floor: how many alerts per second the signatures alone would allow on this machine.
 * End to end, an alert to P partners needs 2 signatures (the origin's, and the router's one
 * countersignature over the routing decision, whatever P) and 1 + 2P verifications (the router
 * checks the origin; each partner checks the origin and the countersignature). Rates are node:crypto Ed25519 through the callback API with
 * many in flight, i.e. using every core, as the hub does; input the size of a real signing input.
 */
export async function cryptoFloor(options: {
  durationMs: number;
  inFlight: number;
  partners: number;
  inputBytes: number;
}) {
  const raw = rawEd25519(Buffer.alloc(options.inputBytes, 0x61));
  const signPerSecond = await rate(options.durationMs, options.inFlight, raw.signAsync);
  const verifyPerSecond = await rate(options.durationMs, options.inFlight, raw.verifyAsync);
  const signsPerAlert = 2;
  const verifiesPerAlert = 1 + 2 * options.partners;
  const alertsPerSecond = 1 / (signsPerAlert / signPerSecond + verifiesPerAlert / verifyPerSecond);
  return { signPerSecond, verifyPerSecond, signsPerAlert, verifiesPerAlert, alertsPerSecond };
}
