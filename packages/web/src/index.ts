/**
 * @alert-hub/web: what the agency console and the coordinator dashboard share. Browser code,
 * bundled by Vite into each service's dist/ (see build.mjs); nothing here runs in Node.
 */
export * from './i18n';
export * from './api';
export * from './ui';
