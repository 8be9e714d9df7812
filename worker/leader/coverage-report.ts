import { createHash } from 'node:crypto';
import type { HandlerSpec } from '../../core/config.ts';

/**
 * One worker's field of the coverage hash (`keys.coverage`, field = WORKER_ID):
 *
 *     <coveredSinceWallMs or empty>:<publishedAtWallMs>:<instanceId>:<startedAtWallMs>:<configFingerprint>
 *
 * The first two parts are the format of workers from before sequence 11 of issue 11, which read only
 * them (`split(':')`, first two parts): an old worker reads a new report, and a new worker reads an
 * old one (the later parts are then undefined), so both kinds can overlap during a deploy. None of the
 * parts may contain `:`; the instance id and the fingerprint are hex.
 */
export interface CoverageReport {
  readonly coveredSinceWallMs: number | undefined;
  readonly publishedAtWallMs: number;
  /** The publishing process (random per start); undefined in an old worker's report. */
  readonly instanceId: string | undefined;
  /** When that process started (wall clock); undefined in an old worker's report. */
  readonly startedAtWallMs: number | undefined;
  /** `configFingerprint(KEY_PATTERN, HANDLER)`; undefined in an old worker's report. */
  readonly configFingerprint: string | undefined;
}

export function encodeCoverageReport(report: CoverageReport): string {
  return [
    report.coveredSinceWallMs ?? '',
    report.publishedAtWallMs,
    report.instanceId ?? '',
    report.startedAtWallMs ?? '',
    report.configFingerprint ?? '',
  ].join(':');
}

/** Undefined when the text is not a report (no finite publishedAt). */
export function decodeCoverageReport(text: string): CoverageReport | undefined {
  const [since, at, instance, started, fingerprint] = text.split(':');
  const publishedAtWallMs = Number(at);
  if (at === undefined || at === '' || !Number.isFinite(publishedAtWallMs)) return undefined;
  const optionalNumber = (part: string | undefined) => {
    const value = part === undefined || part === '' ? Number.NaN : Number(part);
    return Number.isFinite(value) ? value : undefined;
  };
  const optionalText = (part: string | undefined) => (part === undefined || part === '' ? undefined : part);
  return {
    coveredSinceWallMs: optionalNumber(since),
    publishedAtWallMs,
    instanceId: optionalText(instance),
    startedAtWallMs: optionalNumber(started),
    configFingerprint: optionalText(fingerprint),
  };
}

const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/**
 * `<8 hex of KEY_PATTERN>.<8 hex of HANDLER>`: two workers of one LEADER_NAME compare these to find a
 * different configuration, and which of the two differs. Only hashes leave the process (a module
 * path may name something private); 32 bits each make an accidental equality of two different
 * values a 1-in-4-billion event.
 */
export function configFingerprint(keyPattern: string, handler: HandlerSpec): string {
  const handlerText = handler.kind === 'module' ? `module:${handler.path}` : handler.kind;
  return `${shortHash(`KEY_PATTERN=${keyPattern}`)}.${shortHash(`HANDLER=${handlerText}`)}`;
}

/** Which of the two settings differ between two fingerprints (both parts when unreadable). */
export function fingerprintDifferences(mine: string, theirs: string): ('KEY_PATTERN' | 'HANDLER')[] {
  const [myPattern, myHandler] = mine.split('.');
  const [theirPattern, theirHandler] = theirs.split('.');
  const differs: ('KEY_PATTERN' | 'HANDLER')[] = [];
  if (myPattern !== theirPattern || myPattern === undefined) differs.push('KEY_PATTERN');
  if (myHandler !== theirHandler || myHandler === undefined) differs.push('HANDLER');
  return differs;
}
