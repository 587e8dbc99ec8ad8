import { existsSync } from 'node:fs';
import { Option } from 'commander';
import type { SchemaRegistry, TrustStore } from '@alert-hub/core';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { loadTrustStore } from '@alert-hub/runtime/files';
import { reading } from '../files.js';

/**
 * `--trust <dir>`: the trust store, `certs/trust` under the working directory by default (where
 * `hubctl keys generate` puts it), or `AHUB_TRUST_DIR`, as the services read it.
 */
export function trustOption(what: string): Option {
  return new Option('--trust <dir>', what).env('AHUB_TRUST_DIR').default('certs/trust');
}

/** Loads the trust store, or says plainly where it looked and how to point elsewhere. */
export function openTrustStore(dir: string, registry: SchemaRegistry): TrustStore {
  if (!existsSync(dir))
    throw new HubctlError(
      HubctlErrorCode.Prerequisite,
      `no trust store at ${dir}: run this where hubctl keys generate made certs/, or pass --trust <dir>`,
    );
  return reading(() => loadTrustStore(dir, registry), dir);
}
