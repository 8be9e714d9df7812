import { z } from 'zod';

/**
 * What the leader records of its progress on one primary's event sequence, under
 * `keys.processedMark(p, nodeId)`. `seq` numbers the primary's events in publication order as this
 * lease family sees them, and the event identity is `<nodeId>:<seq>`. The numbering rules (docs/worker.md,
 * "Event identity") make sure an identity never names two different expirations:
 *
 * - A leader numbers in *lines*: runs of consecutive seqs over an unbroken stream. It may assign a seq
 *   only inside a reservation that a majority of the mark copies acknowledged (`reservedThrough`,
 *   written ahead of use), so a successor that reads a majority knows every seq that may be in use.
 * - A successor continues the line of the mark (`seq + 1` onward, up to `lineEnd`) only when it found
 *   the mark's `tail` at exactly one position of its window and its window has no discontinuity after
 *   it: then it gives the same events the same identities. Otherwise it starts a fresh line above
 *   `reservedThrough`: fresh identities, never used before (a replayed event may then be handled
 *   twice under two identities: a duplicate, never a reuse).
 *
 * `tail` holds the fingerprints of the last settled events up to and including `seq` (oldest first):
 * every subscriber of a primary receives its events in the same order, so a new leader finds the
 * position of `seq` in its own window by matching this tail.
 */
export interface ProcessedMark {
  readonly nodeId: string;
  /** Sequence number of the last event such that it and every earlier one has been handled. */
  readonly seq: number;
  /** Fingerprints (keyFingerprint) of events seq-tail.length+1 .. seq, oldest first. */
  readonly tail: readonly string[];
  /** Wall-clock receipt time (ms) of event `seq` at the writer: the fallback when the tail is not found. */
  readonly receivedAt: number;
  readonly fencingToken: number;
  /**
   * Last seq of the line that holds `seq`: a successor continuing this line numbers at most up to
   * here, then starts a fresh line (seqs beyond may belong to a later line of the writer).
   */
  readonly lineEnd: number;
  /** Highest seq any leader of this family may have assigned on this primary: fresh lines start above. */
  readonly reservedThrough: number;
}

/**
 * Marks written before reservations existed carry neither field. Their writer numbered consecutively
 * from `seq`, at most a queue's worth ahead of its mark; this margin stands for what it may have used.
 */
export const LEGACY_MARK_RESERVATION = 1_000_000;

const schema = z.object({
  nodeId: z.string().min(1),
  seq: z.number().int().nonnegative(),
  tail: z.array(z.string()),
  receivedAt: z.number(),
  fencingToken: z.number().int().nonnegative(),
  lineEnd: z.number().int().nonnegative().optional(),
  reservedThrough: z.number().int().nonnegative().optional(),
});

export function encodeProcessedMark(mark: ProcessedMark): string {
  return JSON.stringify(mark);
}

/** Undefined for a missing or unreadable mark. */
export function decodeProcessedMark(text: string | null | undefined): ProcessedMark | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) return undefined;
    const { lineEnd, reservedThrough, ...rest } = parsed.data;
    const legacyEnd = rest.seq + LEGACY_MARK_RESERVATION;
    const end = lineEnd ?? legacyEnd;
    return { ...rest, lineEnd: end, reservedThrough: Math.max(end, reservedThrough ?? end) };
  } catch {
    return undefined;
  }
}

/** Of two marks of one primary, the later write: higher token, then larger reservation, then seq. */
export function isNewerMark(a: ProcessedMark, b: ProcessedMark): boolean {
  if (a.fencingToken !== b.fencingToken) return a.fencingToken > b.fencingToken;
  if (a.reservedThrough !== b.reservedThrough) return a.reservedThrough > b.reservedThrough;
  return a.seq > b.seq;
}
