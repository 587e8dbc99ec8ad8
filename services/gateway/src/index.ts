/** @alert-hub/gateway: an agency's gateway to the hub. */
export { loadConfig, databaseFile, type GatewayConfig, type ApiClient } from './config.js';
export { startGateway, type Gateway, type StartGatewayOptions } from './gateway.js';
export { HTTP_STATUS } from './errors.js';
export type { FeedItem } from './store.js';
export type { Receipt } from './intake.js';
export { WITNESS_STALL_CHECKPOINTS } from './witness.js';
