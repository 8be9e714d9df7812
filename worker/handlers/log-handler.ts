import type { ExpiryHandler } from './expiry-handler.ts';

/**
 * The built-in `log` handler (HANDLER=log, the default). It does nothing itself: the processor
 * writes one `key.processed` line for every completed handler call, and that line is this handler's
 * output. Keeping the line in the processor means every handler gets it, with the same fields.
 */
export const logHandler: ExpiryHandler = () => {};
