// Reading Prometheus text exposition in tests: the sum of a metric's
// samples whose labels include the given ones.

export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const p of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(p[1], p[2]);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(m[4]);
  }
  return total;
}

/** Polls `read` until `cond` holds, at most `ms`; returns the last value read. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  cond: (v: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (cond(v)) return v;
    if (Date.now() > deadline) {
      throw new Error(
        `timeout waiting for ${what}; last:\n${typeof v === "string" ? v : JSON.stringify(v)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
