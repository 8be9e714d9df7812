import { setTimeout as sleep } from 'node:timers/promises';
import type { ExpiryHandler } from '../../worker/handlers/expiry-handler.ts';

/**
 * HANDLER module of the `slow-handler` chaos scenario: every call waits CHAOS_HANDLER_DELAY_MS
 * (default 50 ms) without blocking the event loop, far longer than the interval between events at
 * the scenario's rate, so the worker's bounded queue must overflow and shed. The wait ends early (the
 * call fails) when the call's signal aborts.
 */
const delayMs = Number(process.env.CHAOS_HANDLER_DELAY_MS ?? '50');

const slowHandler: ExpiryHandler = async (_event, ctx) => {
  await sleep(delayMs, undefined, { signal: ctx.signal });
};

export default slowHandler;
