import { fileURLToPath } from 'node:url';

/**
 * The repository (or installed image) root: packages/runtime/{src,dist}/ is three levels down.
 * Defaults for the schema directory and trust store are resolved from it, so the services work
 * from any working directory.
 */
export const ROOT_DIR = fileURLToPath(new URL('../../../', import.meta.url));

/** Where the JSON Schemas live unless configured otherwise. */
export const DEFAULT_SCHEMAS_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));

/** The trust store unless configured otherwise: `certs/trust/`. */
export const DEFAULT_TRUST_DIR = fileURLToPath(new URL('../../../certs/trust/', import.meta.url));
