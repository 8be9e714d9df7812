import type { ExpiryHandler } from '../worker/handlers/expiry-handler.ts';

/**
 * HANDLER for the "no-op" rate benchmark: does nothing. Run with LOG_LEVEL=warn, so the processor
 * writes no `key.processed` line either; the bench then counts processed events from the worker's
 * EMF `EventsProcessed` counter (flushed at shutdown) instead of per key.
 */
const noop: ExpiryHandler = () => {};
export default noop;
