import { cpus, totalmem, release } from 'node:os';

/** What the figures were measured on: every published figure names its machine. */
export function describeMachine() {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
    date: new Date().toISOString(),
  };
}
