// Builds the two web apps with Vite into their services' dist/: the agency console
// (services/gateway/console -> services/gateway/dist/console) and the coordinator dashboard
// (services/router/dashboard -> services/router/dist/dashboard). Run by `npm run build:web`,
// which `npm ci` (prepare) and `npm test` run.
import { URL, fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = fileURLToPath(new URL('../../', import.meta.url));
const apps = [
  { src: 'services/gateway/console', out: 'services/gateway/dist/console', base: '/console/' },
  { src: 'services/router/dashboard', out: 'services/router/dist/dashboard', base: '/dashboard/' },
];

for (const app of apps) {
  await build({
    configFile: false,
    root: root + app.src,
    base: app.base,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: {
      outDir: root + app.out,
      emptyOutDir: true,
      // Every byte comes from the service as a file: no data: URIs (the CSP allows only 'self'),
      // no inline polyfill script.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      sourcemap: false,
      target: 'es2022',
    },
  });
}
