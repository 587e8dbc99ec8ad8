#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { jetstream } from '@nats-io/jetstream';
import { connectNats } from '@alert-hub/runtime';
import { RAW, nowMs } from './raw-common.js';

/** The raw pipeline's partner: consume and ack; remember when each message arrived. */
const [url, caFile, partner, outFile] = process.argv.slice(2);
const nc = await connectNats({
  servers: url!,
  name: `raw partner ${partner}`,
  tls: { caFile: caFile! },
});
const consumer = await jetstream(nc).consumers.get(RAW.outStream, partner);
const ids: number[] = [];
const sent: number[] = [];
const done: number[] = [];
const messages = await consumer.consume({
  max_messages: 256,
  callback: (m) => {
    const data = Buffer.from(m.data);
    ids.push(data.readUInt32LE(8));
    sent.push(data.readDoubleLE(0));
    done.push(nowMs());
    m.ack();
  },
});
process.on('SIGTERM', () => {
  void messages.close().then(async () => {
    writeFileSync(outFile!, JSON.stringify({ ids, sent, done }));
    await nc.drain();
    process.exit(0);
  });
});
process.stdout.write('ready\n');
