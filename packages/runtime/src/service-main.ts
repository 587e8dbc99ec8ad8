import { parseArgs } from 'node:util';
import { createLogger, type Logger } from './logger.js';

/** How long a clean shutdown may take before the process exits 1 anyway. */
export const SHUTDOWN_GRACE_MS = 20_000;

/** A started service, as its `main` sees it. */
export interface RunningService<C = unknown> {
  /**
   * Reloads what can change without a restart (SIGHUP); a failed reload keeps the old state.
   * `next` is the configuration file read again (undefined when it is now invalid): the service
   * takes from it what it can apply while running (the API tokens).
   */
  reload(next?: C): void | Promise<void>;
  /** Stops taking work, finishes what is in flight, closes connections and files. */
  close(): Promise<void>;
}

/**
 * The `main` every service shares: `--config <file>`; configuration errors listed on stderr
 * with exit code 2 before anything connects; a start-up failure reported with its code and exit
 * code 1; SIGTERM and SIGINT stop cleanly (exit 0); SIGHUP reads the configuration file again
 * and reloads.
 */
export async function runService<C extends { readonly log: { readonly level: string } }>(options: {
  /** Logger name from the configuration (`gateway-SG-NPARKS`). */
  readonly name: (config: C) => string;
  readonly loadConfig: (file: string | undefined) => C;
  /**
   * The configuration file read again on SIGHUP (`loadConfig` unless given): stricter about an
   * empty file, and checking only what the reload takes from it.
   */
  readonly reloadConfig?: (file: string | undefined) => C;
  readonly start: (config: C, log: Logger) => Promise<RunningService<C>>;
  /** How long a clean shutdown may take ({@link SHUTDOWN_GRACE_MS}; a test makes it short). */
  readonly shutdownGraceMs?: number;
}): Promise<void> {
  const graceMs = options.shutdownGraceMs ?? SHUTDOWN_GRACE_MS;
  const { values } = parseArgs({
    options: { config: { type: 'string', short: 'c' } },
    strict: true,
  });
  let config: C;
  try {
    config = options.loadConfig(values.config);
  } catch (err) {
    const code = (err as { code?: string }).code;
    process.stderr.write(`${(err as Error).message}\n${code ? `[${code}]\n` : ''}`);
    process.exit(2);
  }
  const log = createLogger({ name: options.name(config), level: config.log.level });
  let service: RunningService<C>;
  try {
    service = await options.start(config, log);
  } catch (err) {
    const code = (err as { code?: string }).code;
    log.fatal(
      { reason: (err as Error).message, code, issues: (err as { issues?: unknown }).issues },
      'could not start',
    );
    process.stderr.write(`${(err as Error).message}${code ? ` [${code}]` : ''}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // A close that hangs (a stuck connection, a library bug) must not keep the process alive:
    // orchestrators wait, then kill it without a word.
    setTimeout(() => {
      log.error({ code: 'ERR_SHUTDOWN_TIMEOUT', ms: graceMs }, 'shutdown timed out');
      process.exit(1);
    }, graceMs).unref();
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // One reload at a time: two overlapping ones could finish in either order and leave the older
  // state in force. SIGHUPs while one runs are folded into one more, which reads the file then.
  let reloading = false;
  let again = false;
  const reloadOnce = async () => {
    // The configuration file is read again; an invalid one (a typo while adding a token) changes
    // nothing of it: the tokens in force stay, and the keys and trust store are reloaded still.
    let next: C | undefined;
    try {
      next = (options.reloadConfig ?? options.loadConfig)(values.config);
    } catch (err) {
      log.error(
        {
          code: (err as { code?: string }).code ?? 'ERR_CONFIG_INVALID',
          reason: (err as Error).message,
          issues: (err as { issues?: unknown }).issues,
        },
        'configuration file refused on reload; the API tokens in force stay',
      );
    }
    await service.reload(next);
  };
  process.on('SIGHUP', () => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    void (async () => {
      do {
        again = false;
        try {
          await reloadOnce();
        } catch (err) {
          log.error({ reason: (err as Error).message }, 'reload failed; the state in force stays');
        }
      } while (again && !stopping);
      reloading = false;
    })();
  });
}
