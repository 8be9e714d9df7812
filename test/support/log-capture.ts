import type { LogLevel } from '../../core/config.ts';
import { decodeLogLine } from '../../core/log-decoder.ts';
import type { LogEventName, LogLine, LogRecord } from '../../core/log-events.ts';
import { createLogger, type LogFields, type Logger } from '../../core/logger.ts';

/** A logger whose lines a test reads back through the decoder, as the runner and the chaos suite do. */
export interface LogCapture {
  readonly logger: Logger;
  /** Every decoded line, in order. */
  readonly records: LogRecord[];
  /** The lines of one event, typed by the catalog. */
  events<E extends LogEventName>(name: E): LogLine<E>[];
}

/**
 * Lines the decoder refuses (an event outside the catalog, a missing or mistyped field) throw from
 * the log call: code under test that writes such a line fails its test.
 */
export function captureLogger(
  level: LogLevel = 'debug',
  options: { readonly base?: LogFields; readonly secrets?: readonly string[] } = {},
): LogCapture {
  const records: LogRecord[] = [];
  const logger = createLogger({
    level,
    ...options,
    write: (line) => {
      records.push(decodeStrict(line));
    },
  });
  return {
    logger,
    records,
    events: <E extends LogEventName>(name: E) =>
      records.filter((r): r is LogLine<E> & LogRecord => r.event === name),
  };
}

/** Decodes one line the code under test wrote; a line the catalog refuses fails the test. */
export function decodeStrict(line: string): LogRecord {
  const decoded = decodeLogLine(line);
  if (decoded.kind !== 'event')
    throw new Error(
      `log line refused (${decoded.kind}: ${decoded.kind === 'invalid' ? decoded.detail : ''}): ${line}`,
    );
  return decoded.record;
}
