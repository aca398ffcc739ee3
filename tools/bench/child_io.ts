// The helper side of the parent <-> helper protocol: one JSON object per
// line on stdout; commands arrive as lines on stdin. A helper exits when its
// stdin closes, so a benchmark that dies (even by SIGKILL) leaves no helper
// behind.

import process from "node:process";
import { createInterface } from "node:readline";

export function announce(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Calls onLine for each stdin line; exits (after onClose) when stdin ends. */
export function listenParent(onLine: (line: string) => void, onClose: () => void = () => {}): void {
  const rl = createInterface({ input: process.stdin });
  rl.on("line", onLine);
  rl.on("close", () => {
    onClose();
    process.exit(0);
  });
}

/** argv[2] is the helper's options as JSON. */
export function helperOptions<T>(): T {
  return JSON.parse(process.argv[2] ?? "{}") as T;
}
