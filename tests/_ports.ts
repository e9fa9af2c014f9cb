/** @module Free loopback ports for the services a test starts itself (never hard-coded ones). */

/** A block of `count` consecutive ports on 127.0.0.1 that nothing listens on right now. */
export function freePortRange(count = 1): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const held: Deno.Listener[] = [];
    try {
      for (let i = 0; i < count; i++) {
        held.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
      }
      return base;
    } catch {
      // One of them is taken: try another block.
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error(`Cannot find ${count} free consecutive ports on 127.0.0.1`);
}
