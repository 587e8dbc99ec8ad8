import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AckPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { createDevPki, devPkiPaths } from '@alert-hub/operator';
import { DEFAULT_STREAM_LIMITS, connectNats, unhandled } from '@alert-hub/runtime';
import { startNatsServer, type NatsServer } from '@alert-hub/testkit';
import { pace } from './load.js';
import { memoryOf } from './proc.js';
import { RAW, nowMs, rawMessage } from './raw-common.js';

export interface RawPhase {
  readonly offered: number;
  readonly seconds: number;
  /** Latency in ms from publish to the second partner's receipt, per message. */
  readonly latencies: number[];
  /** Messages that reached both partners per second, over the phase. */
  readonly completedPerSecond: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The raw pipeline beside the hub: a nats-server with TLS (like the hub's, without client
 * certificates), publish -> consume -> republish to two subjects -> two consumers, each step
 * its own process, with the hub's message sizes and JetStream settings. No validation, crypto
 * or audit.
 */
export async function runRaw(options: {
  dir: string;
  env: Readonly<Record<string, string | undefined>>;
  inSize: number;
  outSize: number;
  phases: readonly { rate: number; seconds: number }[];
}) {
  const pki = join(options.dir, 'raw-pki');
  await createDevPki({ dir: pki, principals: [] });
  const p = devPkiPaths(pki);
  const nats: NatsServer = await startNatsServer({
    dir: join(options.dir, 'raw-nats'),
    env: options.env,
    config: `tls {\n  cert_file: ${JSON.stringify(p.serverCertFile)}\n  key_file: ${JSON.stringify(p.serverKeyFile)}\n  timeout: 2\n}\n`,
  });
  const nc = await connectNats({
    servers: nats.url,
    name: 'raw publisher',
    tls: { caFile: p.caFile },
  });
  const jsm = await jetstreamManager(nc);
  const common = {
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    // The hub's own stream settings, so the comparison is like for like.
    duplicate_window: nanos(DEFAULT_STREAM_LIMITS.duplicateWindowMs),
    max_bytes: DEFAULT_STREAM_LIMITS.feedsMaxBytes,
  };
  await jsm.streams.add({ ...common, name: RAW.inStream, subjects: [RAW.inSubject] });
  await jsm.streams.add({ ...common, name: RAW.outStream, subjects: ['raw.out.>'] });
  await jsm.consumers.add(RAW.inStream, {
    durable_name: RAW.forwarder,
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 4096,
  });
  for (const partner of RAW.partners) {
    await jsm.consumers.add(RAW.outStream, {
      durable_name: partner,
      filter_subject: RAW.outSubject(partner),
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: 1024,
    });
  }
  const children: ChildProcess[] = [];
  const start = async (script: string, args: string[]) => {
    const child = spawn(process.execPath, [join(here, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    });
  };
  await start('raw-forwarder.js', [nats.url, p.caFile, String(options.outSize)]);
  const outFiles = RAW.partners.map((partner) => join(options.dir, `raw-${partner}.json`));
  for (const [i, partner] of RAW.partners.entries())
    await start('raw-partner.js', [nats.url, p.caFile, partner, outFiles[i]!]);

  const js = jetstream(nc);
  let id = 0;
  const windows: { from: number; to: number; offered: number; seconds: number }[] = [];
  let inflight = 0;
  for (const phase of options.phases) {
    const from = nowMs();
    const offered = await pace(phase.rate, phase.seconds, (count) => {
      for (let i = 0; i < count; i++) {
        if (inflight > 20_000) return; // never let the publisher itself become the backlog
        const n = ++id;
        inflight++;
        void js
          .publish(RAW.inSubject, rawMessage(n, nowMs(), options.inSize), { msgID: String(n) })
          .finally(() => inflight--);
      }
    });
    windows.push({ from, to: nowMs(), offered, seconds: phase.seconds });
    // Drain before the next phase, so each phase is measured on its own.
    for (let i = 0; i < 600; i++) {
      const c = await jsm.consumers.info(RAW.inStream, RAW.forwarder);
      const o = await Promise.all(RAW.partners.map((x) => jsm.consumers.info(RAW.outStream, x)));
      if (inflight === 0 && unhandled(c) === 0 && o.every((x) => unhandled(x) === 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const memory = {
    'raw nats-server': memoryOf(nats.pid),
    'raw forwarder': memoryOf(children[0]!.pid),
    'raw partner 1': memoryOf(children[1]!.pid),
    'raw partner 2': memoryOf(children[2]!.pid),
  };
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  );
  await nc.close();
  await nats.stop();

  // The latency of a message is until its second copy arrived.
  const byMessage = new Map<number, { sent: number; done: number; copies: number }>();
  for (const f of outFiles) {
    const { ids, sent, done } = JSON.parse(readFileSync(f, 'utf8')) as {
      ids: number[];
      sent: number[];
      done: number[];
    };
    ids.forEach((id, i) => {
      const prev = byMessage.get(id);
      byMessage.set(id, {
        sent: sent[i]!,
        done: Math.max(prev?.done ?? 0, done[i]!),
        copies: (prev?.copies ?? 0) + 1,
      });
    });
  }
  const phases: RawPhase[] = windows.map((w) => {
    const latencies: number[] = [];
    let completedInWindow = 0;
    for (const { sent, done, copies } of byMessage.values()) {
      if (copies < RAW.partners.length) continue;
      if (sent >= w.from && sent < w.to) latencies.push(done - sent);
      if (done >= w.from && done < w.to) completedInWindow++;
    }
    return {
      offered: w.offered,
      seconds: w.seconds,
      latencies: latencies.sort((a, b) => a - b),
      completedPerSecond: completedInWindow / w.seconds,
    };
  });
  return { phases, memory };
}
