import { KeyspaceLeaderError } from '../../core/errors.ts';

/** A script answered something its header does not document: a wiring or version defect. */
export class ScriptReplyError extends KeyspaceLeaderError {
  readonly script: string;
  constructor(script: string, reply: unknown) {
    super('SCRIPT_REPLY_INVALID', `script ${script} answered ${describe(reply)}, outside its contract`);
    this.script = script;
  }
}

/** The outbox append refused the call's fencing token: a higher token has appended to the partition. */
export class FencedTokenError extends KeyspaceLeaderError {
  constructor(options?: { cause?: unknown }) {
    super('FENCED', 'the fence holds a higher fencing token', options);
  }
}

function describe(reply: unknown): string {
  try {
    return JSON.stringify(reply)?.slice(0, 200) ?? String(reply);
  } catch {
    return String(reply);
  }
}
