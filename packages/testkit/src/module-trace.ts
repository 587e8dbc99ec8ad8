import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

/**
 * Preload (`node --import <this file> ...`) that writes every module the process loads, one URL
 * or path a line, to the file named by `AHUB_MODULE_TRACE`: ES modules as the loader resolves
 * them (a resolve hook on the loader thread), CommonJS modules from `require.cache` at exit.
 * Tests use it to prove that a command does not load a dependency it must not need.
 */
const file = process.env['AHUB_MODULE_TRACE'];
if (file) {
  register('./module-trace-hooks.js', { parentURL: import.meta.url, data: { file } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const cached = Object.keys(require.cache);
    if (cached.length > 0) appendFileSync(file, `${cached.join('\n')}\n`);
  });
}
