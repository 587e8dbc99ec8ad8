#!/usr/bin/env node
import { jetstream } from '@nats-io/jetstream';
import { connectNats } from '@alert-hub/runtime';
import { RAW } from './raw-common.js';

/**
 * The raw pipeline's "router": consume, republish to two subjects (padded to the routed
 * envelope's size), ack once both are acknowledged. Many in flight, like the router. Nothing else.
 */
const [url, caFile, outSizeText] = process.argv.slice(2);
const outSize = Number(outSizeText);
const nc = await connectNats({ servers: url!, name: 'raw forwarder', tls: { caFile: caFile! } });
const js = jetstream(nc);
const consumer = await js.consumers.get(RAW.inStream, RAW.forwarder);
const messages = await consumer.consume({
  max_messages: 512,
  callback: (m) => {
    const out = Buffer.alloc(outSize);
    Buffer.from(m.data).copy(out, 0, 0, Math.min(m.data.length, outSize));
    const id = Buffer.from(m.data).readUInt32LE(8);
    void Promise.all(
      RAW.partners.map((p) => js.publish(RAW.outSubject(p), out, { msgID: `${id}:${p}` })),
    ).then(
      () => m.ack(),
      () => m.nak(500),
    );
  },
});
process.on('SIGTERM', () => {
  void messages
    .close()
    .then(() => nc.drain())
    .then(() => process.exit(0));
});
process.stdout.write('ready\n');
