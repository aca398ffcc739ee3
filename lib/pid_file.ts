// The `pid` file: the process id and LF, written at start, removed at exit.

import { unlinkSync, writeFileSync } from "node:fs";
import { openFailed } from "./log/files.ts";

export class PidFile {
  #path: string | null = null;

  /** Writes `pid` to `path` (null: no pid file); throws one clear line on failure. */
  set(path: string | null, pid: number): void {
    if (path === this.#path) return;
    this.remove();
    if (path) {
      try {
        writeFileSync(path, `${pid}\n`);
      } catch (e) {
        throw openFailed(path, e);
      }
    }
    this.#path = path;
  }

  remove(): void {
    if (!this.#path) return;
    try {
      unlinkSync(this.#path);
    } catch { /* already gone */ }
    this.#path = null;
  }
}
