import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ROOT_DIR } from './paths.js';

/** The services' entry points, relative to the repository root. */
export const SERVICE_MAINS = {
  gateway: 'services/gateway/dist/main.js',
  router: 'services/router/dist/main.js',
} as const;
export type ServiceKind = keyof typeof SERVICE_MAINS;

/** A service running as its own process, as in production. */
export interface ServiceProcess {
  readonly kind: ServiceKind;
  readonly proc: ChildProcess;
  /** Parsed JSON log lines so far (the most recent 5,000). */
  readonly logs: Record<string, unknown>[];
  /** The URL it logged when it started listening ('' if it serves no HTTP). */
  readonly url: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
}

export interface SpawnServiceOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Log message that means "ready"; defaults to `<kind> listening`. */
  readonly readyMsg?: string;
  readonly timeoutMs?: number;
  /** Also append every log line to this file. */
  readonly logFile?: string;
  /** Extra node flags (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
}

/**
 * Starts `node services/<kind>/dist/main.js --config <file>` and resolves once it logged that it
 * is ready. Rejects (with its stderr) if it exits or does not get ready in time.
 */
export async function spawnService(
  kind: ServiceKind,
  configFile: string,
  options: SpawnServiceOptions = {},
): Promise<ServiceProcess> {
  const proc = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), `${ROOT_DIR}${SERVICE_MAINS[kind]}`, '--config', configFile],
    {
      cwd: ROOT_DIR,
      env: { PATH: options.env?.['PATH'] ?? '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  const sink: WriteStream | undefined = options.logFile
    ? createWriteStream(options.logFile, { flags: 'a' })
    : undefined;
  let stderr = '';
  let buf = '';
  let url = '';
  const readyMsg = options.readyMsg ?? `${kind} listening`;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${kind} did not get ready in time: ${stderr}`)),
      options.timeoutMs ?? 30_000,
    );
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      sink?.write(d);
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(entry);
        if (logs.length > 5000) logs.splice(0, logs.length - 5000);
        if (entry['msg'] === readyMsg) {
          url = typeof entry['url'] === 'string' ? entry['url'] : '';
          clearTimeout(timer);
          resolve();
        }
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      sink?.write(d);
      stderr = (stderr + d).slice(-8192);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited with code ${code}: ${stderr.trim()}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    proc.kill('SIGKILL');
    sink?.end();
    throw err;
  }
  void exited.then(() => sink?.end());
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    kind,
    proc,
    logs,
    get url() {
      return url;
    },
    async stop(graceMs = 10_000) {
      if (alive()) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => alive() && proc.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
    async kill() {
      if (alive()) proc.kill('SIGKILL');
      await exited;
    },
  };
}
