import { type FieldKind, LOG_EVENTS, type LogEventName, type LogRecord } from './log-events.ts';

/**
 * The one reader of the worker's stdout lines (the local runner, the chaos suite, the bench, the
 * tests): a line becomes a typed record of the catalog (core/log-events.ts), narrowed by `event`.
 *
 * A record is accepted when the line is one JSON object with `time` (a string), a `level` the event
 * is catalogued at, and every required field of the event present with its JSON kind (optional fields
 * are checked when present; `null` only where the catalog allows it; enumerations are not checked).
 * Fields beyond the catalog's (a child logger's base fields) are kept. Cost: one JSON.parse and a
 * loop over the event's fields, so the key.processed lines the bench reads thousands a second cost
 * little more than the parse (bench/log-decoder-cost.ts measures it).
 */
export type DecodedLine =
  | { readonly kind: 'event'; readonly record: LogRecord }
  /** An EMF metrics document (it has `_aws`); core/metrics.ts parseEmfLine reads it. */
  | { readonly kind: 'metrics'; readonly value: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'invalid';
      readonly reason: InvalidLineReason;
      /** What is wrong, for a diagnostic. */
      readonly detail: string;
      /** The parsed object when the line was one (an event outside the catalog, a wrong field). */
      readonly value?: Readonly<Record<string, unknown>>;
    };

export type InvalidLineReason =
  | 'not-json'
  | 'not-an-object'
  | 'no-event'
  | 'unknown-event'
  | 'wrong-level'
  | 'wrong-field';

interface CompiledField {
  readonly name: string;
  readonly kind: FieldKind;
  /** The `typeof` of a scalar kind (the fast check), else undefined. */
  readonly typeOf: 'string' | 'number' | 'boolean' | undefined;
  readonly optional: boolean;
  readonly nullable: boolean;
}

interface CompiledEvent {
  readonly levels: readonly string[];
  readonly fields: readonly CompiledField[];
}

const COMPILED: ReadonlyMap<string, CompiledEvent> = new Map(
  (Object.keys(LOG_EVENTS) as LogEventName[]).map((name) => {
    const spec = LOG_EVENTS[name];
    return [
      name,
      {
        levels: [...spec.levels],
        fields: Object.entries(spec.fields).map(
          ([field, f]): CompiledField => ({
            name: field,
            kind: f.kind,
            typeOf: f.kind === 'string' || f.kind === 'number' || f.kind === 'boolean' ? f.kind : undefined,
            optional: f.optional,
            nullable: f.nullable,
          }),
        ),
      },
    ];
  }),
);

function hasKind(value: unknown, kind: FieldKind): boolean {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'any':
      return true;
  }
}

/** Checks a parsed object against the catalog; `line`-free, for lines parsed elsewhere. */
export function decodeLogObject(value: Readonly<Record<string, unknown>>): DecodedLine {
  if ('_aws' in value) return { kind: 'metrics', value };
  const event = value.event;
  if (typeof event !== 'string') return { kind: 'invalid', reason: 'no-event', detail: 'no event', value };
  const spec = COMPILED.get(event);
  if (spec === undefined) {
    return { kind: 'invalid', reason: 'unknown-event', detail: `event ${event} is not catalogued`, value };
  }
  if (typeof value.level !== 'string' || !spec.levels.includes(value.level)) {
    return {
      kind: 'invalid',
      reason: 'wrong-level',
      detail: `${event} at level ${String(value.level)}`,
      value,
    };
  }
  if (typeof value.time !== 'string') {
    return { kind: 'invalid', reason: 'wrong-field', detail: `${event}: time is not a string`, value };
  }
  for (const field of spec.fields) {
    const item = value[field.name];
    if (field.typeOf !== undefined && typeof item === field.typeOf) continue;
    if (item === undefined) {
      if (field.optional) continue;
    } else if (item === null ? field.nullable || field.kind === 'any' : hasKind(item, field.kind)) {
      continue;
    }
    return {
      kind: 'invalid',
      reason: 'wrong-field',
      detail: `${event}: ${field.name} ${item === undefined ? 'is missing' : `is not ${field.kind}`}`,
      value,
    };
  }
  // Checked above against the event's catalog entry.
  return { kind: 'event', record: value as unknown as LogRecord };
}

/** Decodes one stdout line (without its newline). Never throws. */
export function decodeLogLine(line: string): DecodedLine {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    // A worker killed in the middle of a write leaves half a line.
    return { kind: 'invalid', reason: 'not-json', detail: line.length > 80 ? `${line.slice(0, 80)}…` : line };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { kind: 'invalid', reason: 'not-an-object', detail: typeof parsed };
  }
  return decodeLogObject(parsed as Record<string, unknown>);
}

/** The record of a line of a catalogued event, else undefined. */
export function decodeLogRecord(line: string): LogRecord | undefined {
  const decoded = decodeLogLine(line);
  return decoded.kind === 'event' ? decoded.record : undefined;
}

/** The message of a logged error field (`{ message }`), if it has one. */
export function loggedErrorMessage(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const message = (error as { message?: unknown }).message;
    return typeof message === 'string' ? message : undefined;
  }
  return typeof error === 'string' ? error : undefined;
}
