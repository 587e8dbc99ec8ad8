import { generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  countersignRoutes,
  createTrustStore,
  decodeEnvelope,
  encodeEnvelope,
  generateSigningJwk,
  importSigningKey,
  newAlertId,
  signAlert,
  verifyCountersignature,
  verifyOrigin,
  type Alert,
  type GeneralJws,
  type SchemaRegistry,
} from '@alert-hub/core';
import { sampleSeizureReport } from '@alert-hub/testkit/samples';

/**
 * Raw node:crypto Ed25519 over `input` with a fresh key: one signature made now, and sign and
 * verify through the callback API (the thread pool), as the hub and its crypto floor use them.
 */
export function rawEd25519(input: Buffer) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signature = sign(null, input, privateKey);
  return {
    privateKey,
    publicKey,
    signature,
    signAsync: () =>
      new Promise<Buffer>((res, rej) =>
        sign(null, input, privateKey, (e, s) => (e ? rej(e) : res(s))),
      ),
    verifyAsync: () =>
      new Promise<boolean>((res, rej) =>
        verify(null, input, publicKey, signature, (e, ok) => (e ? rej(e) : res(ok))),
      ),
  };
}

/** Runs `op` with `inFlight` calls outstanding for `durationMs`; returns operations per second. */
export async function rate(
  durationMs: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let done = 0;
  const end = performance.now() + durationMs;
  const worker = async (w: number) => {
    for (let i = w; performance.now() < end; i += inFlight) {
      await op(i);
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  return done / ((performance.now() - start) / 1000);
}

function syncRate(durationMs: number, op: (i: number) => unknown): number {
  let done = 0;
  const start = performance.now();
  const end = start + durationMs;
  while (performance.now() < end) {
    for (let k = 0; k < 64; k++) op(done++);
  }
  return done / ((performance.now() - start) / 1000);
}

/** The canonical seizure report, about 1.3 KB of JSON like the field notes measured. */
export function benchAlert(origin: string, now = new Date()): Alert {
  return sampleSeizureReport(
    origin,
    {},
    { now, id: newAlertId(now.getTime()) },
  ) as unknown as Alert;
}

export interface CoreBenchResult {
  alertBytes: number;
  envelopeBytes: number;
  raw: { signSync: number; verifySync: number; signAsync: number; verifyAsync: number };
  core: {
    sign: number;
    verifyOrigin: number;
    verifyRouted: number;
    encode: number;
    decode: number;
    validate: number;
  };
  ratios: { rawSignOverCoreSign: number; rawVerifyOverCoreVerify: number };
}

/**
 * Sign and verify throughput of @alert-hub/core beside node:crypto's raw Ed25519 in the same
 * run, same payload, same number in flight, alternating over `rounds` rounds (medians reported).
 * The goal is core within 1.3x of raw.
 */
export async function benchCore(
  registry: SchemaRegistry,
  options: { durationMs: number; inFlight: number; rounds?: number },
): Promise<CoreBenchResult> {
  const { durationMs, inFlight } = options;
  const agency = generateSigningJwk('EdDSA');
  const router = generateSigningJwk('EdDSA');
  const key = importSigningKey(agency.privateJwk, 'SG-NPARKS');
  const hubKey = importSigningKey(router.privateJwk, 'HUB');
  const trust = createTrustStore({
    jwks: [
      {
        source: 'SG',
        document: { principal: 'SG-NPARKS', role: 'agency', keys: [agency.publicJwk] },
      },
      { source: 'HUB', document: { principal: 'HUB', role: 'router', keys: [router.publicJwk] } },
    ],
    registry,
  });
  const alert = benchAlert('SG-NPARKS');
  const schemaId = registry.schemaIdFor(alert.type, alert.version)!;
  const jws = await signAlert(alert, key, schemaId);
  const [routed] = (await countersignRoutes(jws, hubKey, {
    origin: alert.origin,
    alertId: alert.id,
    routedAt: alert.issuedAt,
    grants: [
      { recipient: 'VN-CUSTOMS', agreement: { id: 'A', version: 1 }, onward: false },
      { recipient: 'CN-GACC', agreement: { id: 'A', version: 1 }, onward: false },
    ],
  })) as [GeneralJws, GeneralJws];
  const bytes = encodeEnvelope(routed);

  // The raw floor: the same signing input, the same key type, nothing else.
  const input = Buffer.from(`${jws.signatures[0]!.protected}.${jws.payload}`);
  const {
    privateKey,
    publicKey,
    signature: rawSig,
    signAsync: rawSignAsync,
    verifyAsync: rawVerifyAsync,
  } = rawEd25519(input);

  // Raw and core alternate over several rounds and each figure is the median, so that a
  // burst of other load on the machine does not land on one side of a ratio only.
  const rounds = options.rounds ?? 3;
  const samples: Record<string, number[]> = {};
  const record = (name: string, value: number) => (samples[name] ??= []).push(value);
  for (let r = 0; r < rounds; r++) {
    record('rawSignAsync', await rate(durationMs, inFlight, rawSignAsync));
    record('coreSign', await rate(durationMs, inFlight, () => signAlert(alert, key, schemaId)));
    record('rawVerifyAsync', await rate(durationMs, inFlight, rawVerifyAsync));
    record(
      'coreVerify',
      await rate(durationMs, inFlight, () =>
        verifyOrigin(decodeEnvelope(bytes), { trust, registry }),
      ),
    );
  }
  const median = (name: string) => {
    const v = [...(samples[name] ?? [])].sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)] ?? 0;
  };
  const raw = {
    signSync: syncRate(durationMs, () => sign(null, input, privateKey)),
    verifySync: syncRate(durationMs, () => verify(null, input, publicKey, rawSig)),
    signAsync: median('rawSignAsync'),
    verifyAsync: median('rawVerifyAsync'),
  };
  const core = {
    sign: median('coreSign'),
    verifyOrigin: median('coreVerify'),
    verifyRouted: await rate(durationMs, inFlight, async () => {
      const env = decodeEnvelope(bytes);
      const v = await verifyOrigin(env, { trust, registry });
      await verifyCountersignature(env, { trust, recipient: 'VN-CUSTOMS', alertId: v.alert.id });
    }),
    encode: syncRate(durationMs / 2, () => encodeEnvelope(routed)),
    decode: syncRate(durationMs / 2, () => decodeEnvelope(bytes)),
    validate: syncRate(durationMs / 2, () => registry.checkAlert(alert)),
  };
  return {
    alertBytes: Buffer.byteLength(JSON.stringify(alert)),
    envelopeBytes: bytes.byteLength,
    raw,
    core,
    ratios: {
      rawSignOverCoreSign: raw.signAsync / core.sign,
      rawVerifyOverCoreVerify: raw.verifyAsync / core.verifyOrigin,
    },
  };
}
