#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the root "prepare" script).
import('../dist/cli.js').catch((err) => {
  if (
    err &&
    err.code === 'ERR_MODULE_NOT_FOUND' &&
    String(err.message).includes('hubctl/dist/cli.js')
  ) {
    console.error('hubctl is not built yet: run `npm run build` at the repository root.');
    process.exit(2);
  }
  throw err;
});
