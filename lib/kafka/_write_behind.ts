/** @module Write-behind per partition: the next fetch overlaps this batch's write; commits stay in order. */

/**
 * One chain per partition: at most one write in flight each, and a write starts only after the
 * previous one of its partition settled. When a write fails, the partition has a hole from that
 * batch's first offset: later batches (fetched before the failure was known) are refused and
 * nothing is committed past the hole until a batch starting at or before it comes back (after
 * the seek or the rejoin). A generation counter (bumped on every group join) tells a write
 * whether its partition may have changed owner since its batch was fetched.
 */
export class WriteBehind {
  #tails = new Map<number, Promise<void>>();
  #holes = new Map<number, bigint>();
  #generation = 0;

  /** The current group generation (as counted here). */
  get generation(): number {
    return this.#generation;
  }

  /** A rebalance happened: writes from before it must not commit. */
  bump(): void {
    this.#generation++;
  }

  /** Resolves once the partition's previous write settled. */
  previous(partition: number): Promise<void> {
    return this.#tails.get(partition) ?? Promise.resolve();
  }

  /**
   * May a batch starting at `first` be written now? False past a hole; a batch that covers the
   * hole again closes it.
   */
  accepts(partition: number, first: string): boolean {
    const hole = this.#holes.get(partition);
    if (hole === undefined) return true;
    if (BigInt(first) > hole) return false;
    this.#holes.delete(partition);
    return true;
  }

  /** Whether the partition has a hole (a failed write not yet fetched again). */
  hasHole(partition: number): boolean {
    return this.#holes.has(partition);
  }

  /** Chains `work` after the partition's previous write; a failure opens a hole at `first`. */
  push(
    partition: number,
    first: string | null,
    work: () => Promise<void>,
  ): void {
    const tail = this.previous(partition).then(async () => {
      try {
        await work();
      } catch {
        if (first !== null) {
          const hole = this.#holes.get(partition);
          const at = BigInt(first);
          if (hole === undefined || at < hole) this.#holes.set(partition, at);
        }
      }
    });
    this.#tails.set(partition, tail);
  }

  /** Resolves once every write in flight settled. */
  async drain(): Promise<void> {
    await Promise.all(this.#tails.values());
  }
}
