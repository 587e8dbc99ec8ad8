#!/usr/bin/env node
// How long one tick of the router's origin budget holds the event loop at its bounds: A agencies
// (default 110), each with 500 buckets over the feed stream's max age (30 days) and L late-receipt
// charges still to start (default 5,000: ten lateness classes in each of 500 receipt buckets),
// every agency charged once between ticks. Prints the time to load them (a router's start) and
// the median and worst of 20 ticks. Run after `npm run build`.
// Usage: node bench/scripts/origin-budget-tick.mjs [A=110] [L=5000]
import { performance } from 'node:perf_hooks';
import { OriginBudget } from '../../services/router/dist/origin-budget.js';

const agencies = Array.from({ length: Number(process.argv[2] ?? 110) }, (_, i) => `AG-${i}`);
const late = Number(process.argv[3] ?? 5000);
const maxAgeMs = 30 * 24 * 3600_000;
const bucketMs = Math.ceil(maxAgeMs / 500);
const start = 2_000_000_000_000;
let now = start;
const first = Math.floor(start / bucketMs) - 498;
const charges = [];
const deferred = [];
for (const agency of agencies) {
  for (let i = 0; i < 500; i++)
    charges.push({ agency, until: (first + i) * bucketMs, bytes: 1000 });
  for (let n = 0; n < late; n++)
    deferred.push({
      agency,
      until: (first + Math.floor(n / 10)) * bucketMs,
      lateness: n % 10,
      // Starts spread over the next max age, in no order.
      starts: start + 1 + Math.floor(Math.random() * maxAgeMs),
      bytes: 10,
    });
}
const store = {
  originCharges: () => charges,
  originDeferred: () => deferred,
  addOriginCharges: () => {},
};
const log = { warn() {}, info() {}, error() {}, debug() {} };
let t = performance.now();
const budget = new OriginBudget({
  maxAgeMs,
  enforced: true,
  budget: () => 1e12,
  store,
  log,
  now: () => now,
});
console.log(
  `${agencies.length} agencies, 500 buckets and ${late} late charges each: loaded in ${(performance.now() - t).toFixed(1)} ms`,
);
const ticks = [];
for (let r = 0; r < 20; r++) {
  now += 1000;
  for (const a of agencies) budget.charge(a, 100);
  t = performance.now();
  budget.tick();
  ticks.push(performance.now() - t);
}
ticks.sort((a, b) => a - b);
console.log(`tick: median ${ticks[10].toFixed(1)} ms, worst ${ticks[19].toFixed(1)} ms (20 ticks)`);
