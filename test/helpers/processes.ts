import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './hubctl.js';

/** A service running as its own process, as in production. */
export interface ServiceProcess {
  readonly proc: ChildProcess;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** The HTTP URL it logged when it started listening. */
  readonly url: string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait, as a crash. */
  kill(): Promise<void>;
}

const MAINS = {
  gateway: 'services/gateway/dist/main.js',
  router: 'services/router/dist/main.js',
} as const;

/**
 * Starts `node services/<kind>/dist/main.js --config <file>` and waits for the log line that
 * carries `readyField` (the URL it listens on).
 */
export async function startService(
  kind: keyof typeof MAINS,
  configFile: string,
  options: { env?: Record<string, string>; readyMsg?: string; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [`${ROOT}${MAINS[kind]}`, '--config', configFile], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buf = '';
  let url = '';
  const readyMsg = options.readyMsg ?? `${kind} listening`;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${kind} did not start: ${stderr}\n${JSON.stringify(logs.slice(-5))}`)),
      options.timeoutMs ?? 20_000,
    );
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(l) as Record<string, unknown>;
          logs.push(entry);
          if (entry['msg'] === readyMsg) {
            url = typeof entry['url'] === 'string' ? entry['url'] : '';
            clearTimeout(timer);
            resolve();
          }
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited with ${code}: ${stderr}`));
    });
  });
  await ready;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return {
    proc,
    logs,
    get url() {
      return url;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
