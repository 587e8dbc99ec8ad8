import { rate, rawEd25519 } from './core.js';

/**
 * The crypto floor: how many alerts per second the signatures alone would allow on this machine.
 * End to end, an alert to P partners needs 1 + P signatures (the origin's, one countersignature
 * per partner) and 1 + 2P verifications (the router checks the origin; each partner checks the
 * origin and its countersignature). Rates are node:crypto Ed25519 through the callback API with
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
  const signsPerAlert = 1 + options.partners;
  const verifiesPerAlert = 1 + 2 * options.partners;
  const alertsPerSecond = 1 / (signsPerAlert / signPerSecond + verifiesPerAlert / verifyPerSecond);
  return { signPerSecond, verifyPerSecond, signsPerAlert, verifiesPerAlert, alertsPerSecond };
}
