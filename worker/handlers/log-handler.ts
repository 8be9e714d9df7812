import type { ExpiryHandler } from './expiry-handler.ts';

/**
 * The built-in `log` handler (HANDLER=log, the default). It does nothing itself: the processor
 * writes one `key.processed` line for every completed handler call, and that line is this handler's
 * output. Keeping the line in the processor means every handler gets it, with the same fields.
 *
 * Values (issue 14): of a captured value the line carries its type and payload bytes only
 * (`valueType`, `valueBytes`; worker/expiry/expired-value.ts), of an event without one the reason
 * (`valueMissing`); never the value's contents, at any level (docs/security.md, "Values"). This
 * handler writes no line of its own for them: a second line per event would double the log volume
 * (docs/deploy.md, "CloudWatch Logs cost of `key.processed` lines") and ignore PROCESSED_LOG.
 */
export const logHandler: ExpiryHandler = () => {};
