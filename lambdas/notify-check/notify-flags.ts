/**
 * The `notify-keyspace-events` value: what keyspace-leader needs and how it is merged into what a node
 * (or a parameter group) already has. Contract: a merge only ever adds flags; flags somebody else set
 * are kept, including characters this code does not know (a newer engine's classes).
 *
 * Needed: `E` (the keyevent channels `__keyevent@0__:<event>`) and `x` (`expired` events); with
 * PRECISE_EXPIRY on (the default) also `g` (generic events, among them `expire`: a TTL was set or
 * changed, the workers' deadline index, docs/precise-expiry.md). `A` is an alias for `g$lshzxetd`,
 * so it already covers `g` and `x`.
 *
 * The merged value is written in Redis' canonical order (the order CONFIG GET answers with:
 * `A` or `g$lshzxetdn`, then `K`, `E`, `m`), so `Kg` becomes `gxKE` and reads back unchanged.
 */

/** Flags keyspace-leader needs, each as one character: `E`, `g`, `x` with precise expiry, else `E`, `x`. */
export function requiredNotifyFlags(preciseExpiry: boolean): readonly string[] {
  return preciseExpiry ? PRECISE_EXPIRY_FLAGS : NATIVE_EXPIRY_FLAGS;
}

const PRECISE_EXPIRY_FLAGS = ['E', 'g', 'x'] as const;
const NATIVE_EXPIRY_FLAGS = ['E', 'x'] as const;

/** The event classes `A` stands for (Redis 7 `NOTIFY_ALL`). */
const ALL_CLASSES = ['g', '$', 'l', 's', 'h', 'z', 'x', 'e', 't', 'd'] as const;
/** Class flags in canonical order; `n` (new-key events) is not part of `A`. */
const CLASS_ORDER = [...ALL_CLASSES, 'n'] as const;
/** Channel and miss flags, written after the classes. */
const TRAILING_ORDER = ['K', 'E', 'm'] as const;
const KNOWN = new Set<string>([...CLASS_ORDER, ...TRAILING_ORDER, 'A']);

export interface NotifyFlagsMerge {
  /** The value as found (undefined/null read as empty: notifications off). */
  readonly current: string;
  /** The value to write; equal to `current` when nothing is missing (the node is left alone). */
  readonly merged: string;
  /** Required flags absent from `current`, in `requiredNotifyFlags` order. */
  readonly missing: readonly string[];
  /** True when `merged` must be written. */
  readonly changed: boolean;
}

/** The set of flags a value turns on, with `A` expanded into its classes. */
export function expandNotifyFlags(value: string | null | undefined): Set<string> {
  const flags = new Set<string>();
  for (const flag of value ?? '') {
    if (flag === 'A') for (const c of ALL_CLASSES) flags.add(c);
    else flags.add(flag);
  }
  return flags;
}

/**
 * Required flags that `value` lacks (empty when the value is good enough); `preciseExpiry` is
 * PRECISE_EXPIRY (ReportConfig.preciseExpiry).
 */
export function missingNotifyFlags(value: string | null | undefined, preciseExpiry: boolean): string[] {
  const flags = expandNotifyFlags(value);
  return requiredNotifyFlags(preciseExpiry).filter((flag) => !flags.has(flag));
}

export function hasRequiredNotifyFlags(value: string | null | undefined, preciseExpiry: boolean): boolean {
  return missingNotifyFlags(value, preciseExpiry).length === 0;
}

/**
 * Renders a flag set in canonical order. Unknown characters are kept, after the known ones, in the
 * order first seen in `original`.
 *
 * Redis 7.0 prints `A` without `n` even when `n` is on, so an `n` hidden that way cannot be seen and
 * thus cannot be preserved by any read-merge-write; an `n` that is visible is kept.
 */
function renderNotifyFlags(flags: Set<string>, original: string): string {
  let out = '';
  if (ALL_CLASSES.every((c) => flags.has(c))) {
    out += 'A';
    if (flags.has('n')) out += 'n';
  } else {
    for (const c of CLASS_ORDER) if (flags.has(c)) out += c;
  }
  for (const c of TRAILING_ORDER) if (flags.has(c)) out += c;
  const unknown = new Set<string>();
  for (const c of original) if (!KNOWN.has(c)) unknown.add(c);
  for (const c of unknown) out += c;
  return out;
}

/**
 * Merges the flags required in this mode into `current`. Never removes a flag: with precise expiry
 * off, a `g` somebody set is kept (only the workers' load changes: they ignore `expire` events then).
 */
export function mergeNotifyFlags(
  current: string | null | undefined,
  preciseExpiry: boolean,
): NotifyFlagsMerge {
  const value = current ?? '';
  const missing = missingNotifyFlags(value, preciseExpiry);
  if (missing.length === 0) return { current: value, merged: value, missing, changed: false };
  const flags = expandNotifyFlags(value);
  for (const flag of missing) flags.add(flag);
  return { current: value, merged: renderNotifyFlags(flags, value), missing, changed: true };
}
