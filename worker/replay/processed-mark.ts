import { z } from 'zod';

/**
 * What the leader records of its progress on one primary's event sequence, written every few ms under
 * `keys.processedMark(nodeId)`. `seq` numbers the primary's events in publication order as this
 * lease family sees them: the first leader starts at 1, and a new leader continues the numbering from
 * the mark it aligned with, so the event identity `<nodeId>:<seq>` is the same on every worker that
 * aligned. `tail` holds the fingerprints of the last events up to and including `seq` (oldest first):
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
}

const schema = z.object({
  nodeId: z.string().min(1),
  seq: z.number().int().nonnegative(),
  tail: z.array(z.string()),
  receivedAt: z.number(),
  fencingToken: z.number().int().nonnegative(),
});

export function encodeProcessedMark(mark: ProcessedMark): string {
  return JSON.stringify(mark);
}

/** Undefined for a missing or unreadable mark: the caller then treats the primary as never processed. */
export function decodeProcessedMark(text: string | null | undefined): ProcessedMark | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
