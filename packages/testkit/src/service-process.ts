import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  createWriteStream,
  openSync,
  readFileSync,
  statSync,
  type WriteStream,
} from 'node:fs';
import { ROOT_DIR } from '@alert-hub/runtime/files';

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

/**
 * How long a service may take to log that it listens. Generous: on a shared 2-core machine at
 * load average 40, seven gateways starting at once took longer than 30 s (measured).
 */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;

/** Services started by this process and still running: killed when this process exits. */
const live = new Set<ChildProcess>();
let killOnExit = false;

/**
 * Keeps `proc` in {@link live} until it exits. A test that fails before it stops its services,
 * or a process that exits without stopping them, must not leave them running (consuming a hub's
 * messages, holding ports and CPU) after the run, as nats-servers from the harness never are.
 */
function track(proc: ChildProcess, exited: Promise<number | null>): void {
  live.add(proc);
  void exited.then(() => live.delete(proc));
  if (killOnExit) return;
  killOnExit = true;
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL');
  });
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
  /**
   * Parse the service's log lines into `logs` (default true). With false (and a `logFile`), the
   * service writes straight into the file and this process only reads it until the service is
   * ready: a benchmark's load generator should not spend its CPU relaying every service's logs.
   */
  readonly captureLogs?: boolean;
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
  if (options.captureLogs === false && options.logFile)
    return spawnToFile(kind, configFile, options, options.logFile);
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
    ? createWriteStream(options.logFile, { flags: 'a', mode: 0o600 })
    : undefined;
  let stderr = '';
  let buf = '';
  let url = '';
  let isReady = false;
  const readyMsg = options.readyMsg ?? `${kind} listening`;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  track(proc, exited);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${kind} did not get ready in time: ${stderr}`)),
      options.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    );
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      sink?.write(d);
      if (isReady && options.captureLogs === false) return;
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
          isReady = true;
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
  return handleOf(kind, proc, exited, logs, () => url);
}

/** Like spawnService, with the service's output going straight to `logFile`. */
async function spawnToFile(
  kind: ServiceKind,
  configFile: string,
  options: SpawnServiceOptions,
  logFile: string,
): Promise<ServiceProcess> {
  const fd = openSync(logFile, 'a', 0o600);
  const start = statSync(logFile).size;
  const proc = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), `${ROOT_DIR}${SERVICE_MAINS[kind]}`, '--config', configFile],
    {
      cwd: ROOT_DIR,
      env: { PATH: options.env?.['PATH'] ?? '', ...options.env },
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  track(proc, exited);
  const readyMsg = options.readyMsg ?? `${kind} listening`;
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  let url: string | undefined;
  for (let offset = start; url === undefined;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `${kind} exited with code ${proc.exitCode}: ${readFileSync(logFile, 'utf8').slice(start).slice(-4000)}`,
      );
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(
        `${kind} did not get ready in time: ${readFileSync(logFile, 'utf8').slice(start).slice(-4000)}`,
      );
    }
    const text = readFileSync(logFile, 'utf8').slice(offset);
    const lines = text.split('\n');
    offset += text.length - (lines[lines.length - 1]?.length ?? 0);
    for (const line of lines.slice(0, -1)) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry['msg'] === readyMsg) url = typeof entry['url'] === 'string' ? entry['url'] : '';
      } catch {
        // not a log line
      }
    }
    if (url === undefined) await new Promise((r) => setTimeout(r, 25));
  }
  const readyUrl = url;
  return handleOf(kind, proc, exited, [], () => readyUrl);
}

function handleOf(
  kind: ServiceKind,
  proc: ChildProcess,
  exited: Promise<number | null>,
  logs: Record<string, unknown>[],
  url: () => string,
): ServiceProcess {
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    kind,
    proc,
    logs,
    get url() {
      return url();
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

/**
 * A Prometheus scrape of a service at `url`: a router's `/metrics` needs the bearer token of a
 * metrics reader, operator or coordinator; a gateway's needs none. Anything but 200 throws, so a
 * test never reads a refusal as "no such series".
 */
export async function scrapeMetrics(url: string, token?: string): Promise<string> {
  const res = await fetch(
    `${url}/metrics`,
    token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}/metrics answered ${res.status}: ${text}`);
  return text;
}
