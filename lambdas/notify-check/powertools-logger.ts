import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '../../core/config.ts';
import { createLogger, type LogFields, type Logger } from '../../core/logger.ts';

/**
 * core's Logger interface written through Powertools Logger (Lambda): core's logger builds the record
 * (stable `event` field, `time`, redaction of secret fields and values), Powertools prints it with the
 * Lambda context (request id, cold start, function name) and its own level/sampling settings.
 */
export function powertoolsLogger(
  powertools: PowertoolsLogger,
  options: {
    readonly level: LogLevel;
    readonly base?: LogFields;
    readonly secrets?: readonly (string | undefined)[];
  },
): Logger {
  return createLogger({
    level: options.level,
    base: options.base ?? {},
    secrets: options.secrets ?? [],
    write: (line) => {
      const { level, event, ...fields } = JSON.parse(line) as Record<string, unknown> & {
        level: LogLevel;
        event: string;
      };
      powertools[level]({ message: event, event, ...fields });
    },
  });
}
