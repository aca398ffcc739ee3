// Log files shared by every log that names the same path (error logs of
// several servers, access logs): one descriptor each, appended with
// synchronous writes, reopened together after rotation.

import { closeSync, openSync, writeSync } from "node:fs";
import { describeSocketError } from "../core/errno.ts";

const files = new Map<string, { fd: number }>();

/** nginx's `open() "<path>" failed (13: Permission denied)` shape. */
export function openFailed(path: string, e: unknown): Error {
  return new Error(`open() "${path}" failed (${describeSocketError(e)})`);
}

/** Opens (or reuses) `path` for appending; throws one clear line if it cannot. */
export function openLogFile(path: string): (text: string) => void {
  let f = files.get(path);
  if (!f) {
    try {
      f = { fd: openSync(path, "a", 0o644) };
    } catch (e) {
      throw openFailed(path, e);
    }
    files.set(path, f);
  }
  const file = f;
  return (text) => writeSafe(file.fd, text);
}

export function writeSafe(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    // A log that cannot be written must not take the proxy down.
  }
}

/**
 * Reopens every log file (`-s reopen`, after log rotation). A file that
 * cannot be reopened keeps its old descriptor; its path is returned so the
 * caller can log the problem.
 */
export function reopenLogFiles(): string[] {
  const failed: string[] = [];
  for (const [path, f] of files) {
    let fd: number;
    try {
      fd = openSync(path, "a", 0o644);
    } catch {
      failed.push(path);
      continue;
    }
    const old = f.fd;
    f.fd = fd;
    try {
      closeSync(old);
    } catch { /* already closed */ }
  }
  return failed;
}
