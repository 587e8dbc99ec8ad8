import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const HUBCTL = `${ROOT}node_modules/.bin/hubctl`;

/** Runs the built hubctl as a user would; resolves with exit code and output. */
export function hubctl(
  args: readonly string[],
  options: { cwd?: string; input?: string; env?: Record<string, string> } = {},
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(HUBCTL, [...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * `hubctl audit verify` of the audit database `db` against `anchor` (a file, or a
 * `/v1/audit/checkpoint` URL), with the fixture's trust store and hub key.
 */
export function auditVerifyArgs(
  fx: { readonly trustDir: string; readonly hubKey: { readonly kid: string } },
  db: string,
  anchor: string,
): string[] {
  return [
    'audit',
    'verify',
    '--db',
    db,
    '--trust',
    fx.trustDir,
    '--anchor',
    anchor,
    '--hub-key',
    fx.hubKey.kid,
  ];
}
