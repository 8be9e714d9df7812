// Ambient types for redlock 5.0.0-beta.2: its package.json "exports" has no "types" condition,
// so TypeScript under NodeNext cannot find dist/index.d.ts (node-redlock#216). Only the surface
// this project uses is declared; worker/leader/ wraps it behind the project's own interface.
declare module 'redlock' {
  import type { EventEmitter } from 'node:events';

  /**
   * What redlock needs of a client. 5.0.0-beta.2 passes the keys and the arguments as ONE array in the
   * third parameter (`evalsha(hash, keys.length, [...keys, ...args])`), and expects a number back.
   */
  export interface RedlockClient {
    evalsha(hash: string, numKeys: number, keysAndArgs: readonly (string | number)[]): Promise<unknown>;
    eval(script: string, numKeys: number, keysAndArgs: readonly (string | number)[]): Promise<unknown>;
  }

  export interface Settings {
    readonly driftFactor: number;
    readonly retryCount: number;
    readonly retryDelay: number;
    readonly retryJitter: number;
    readonly automaticExtensionThreshold: number;
  }

  export interface ExecutionStats {
    readonly membershipSize: number;
    readonly quorumSize: number;
    readonly votesFor: Set<RedlockClient>;
    readonly votesAgainst: Map<RedlockClient, Error>;
  }

  export interface ExecutionResult {
    attempts: ReadonlyArray<Promise<ExecutionStats>>;
  }

  export class ResourceLockedError extends Error {}

  export class ExecutionError extends Error {
    readonly attempts: ReadonlyArray<Promise<ExecutionStats>>;
  }

  export class Lock {
    readonly redlock: Redlock;
    readonly resources: string[];
    readonly value: string;
    readonly attempts: ReadonlyArray<Promise<ExecutionStats>>;
    expiration: number;
    release(): Promise<ExecutionResult>;
    extend(duration: number): Promise<Lock>;
  }

  export default class Redlock extends EventEmitter {
    constructor(
      clients: Iterable<RedlockClient>,
      settings?: Partial<Settings>,
      scripts?: {
        readonly acquireScript?: string | ((script: string) => string);
        readonly extendScript?: string | ((script: string) => string);
        readonly releaseScript?: string | ((script: string) => string);
      },
    );
    readonly scripts: {
      readonly acquireScript: { value: string; hash: string };
      readonly extendScript: { value: string; hash: string };
      readonly releaseScript: { value: string; hash: string };
    };
    acquire(resources: string[], duration: number, settings?: Partial<Settings>): Promise<Lock>;
    release(lock: Lock, settings?: Partial<Settings>): Promise<ExecutionResult>;
    extend(existing: Lock, duration: number, settings?: Partial<Settings>): Promise<Lock>;
    quit(): Promise<void>;
  }
}
