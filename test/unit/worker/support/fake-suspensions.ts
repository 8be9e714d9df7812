import type { SuspensionChange, SuspensionListener } from '../../../../worker/leader/coverage-registry.ts';
import type { SuspensionsLike } from '../../../../worker/replay/replay-coordinator.ts';

/**
 * The replay coordinator's owner of suspensions (worker/leader/coverage-registry.ts in the worker),
 * driven by the test: `gap` is a gap the registry noted, `keep` a gap it settled without a hand-over.
 */
export class FakeSuspensions implements SuspensionsLike {
  private readonly suspendedIds = new Set<string>();
  private readonly listeners: SuspensionListener[] = [];

  isSuspended(nodeId: string): boolean {
    return this.suspendedIds.has(nodeId);
  }

  onSuspensionChange(listener: SuspensionListener): void {
    this.listeners.push(listener);
  }

  /** A gap of `nodeId`: suspended (again), as the registry reports every gap. */
  gap(nodeId: string): void {
    this.suspendedIds.add(nodeId);
    this.notify({ nodeId, suspended: true });
  }

  /** The gap of `nodeId` was kept (nobody was covered through it): its suspension ends. */
  keep(nodeId: string): void {
    if (this.suspendedIds.delete(nodeId)) this.notify({ nodeId, suspended: false });
  }

  /** Every suspension ends. */
  keepAll(): void {
    for (const nodeId of [...this.suspendedIds]) this.keep(nodeId);
  }

  private notify(change: SuspensionChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
