// Where the benchmark finds the project and its pinned runtimes.

import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..");
export const BIN = join(ROOT, "node_modules", ".bin");
export const BUN = join(BIN, "bun");
export const DENO = join(BIN, "deno");
export const TLS_DIR = join(ROOT, "tests", "fixtures", "tls");
