#!/usr/bin/env node
// Summarises V8 .cpuprofile files: busy share of the main thread and the top self-time functions.
// Usage: node bench/scripts/top-of-profile.mjs <file.cpuprofile>... [--top 15]
import { readFileSync } from 'node:fs';
const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const top = topIdx >= 0 ? Number(args[topIdx + 1]) : 15;
const files = args.filter((a, i) => !a.startsWith('--') && (topIdx < 0 || i !== topIdx + 1));
for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const total = p.timeDeltas.reduce((a, b) => a + b, 0);
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((s, [, v]) => s + v, 0);
  console.log(
    `${file}: ${(total / 1e6).toFixed(1)} s profiled, main thread busy ${(100 * (1 - idle / total)).toFixed(0)}%`,
  );
  [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, v]) => console.log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`));
}
