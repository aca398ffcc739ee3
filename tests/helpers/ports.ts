// Loopback ports for test servers (mailgate, HAProxy, Dovecot, Postfix),
// handed out some time before the server binds them.
//
// The old way (bind port 0, read the number, close) returned a port from the
// kernel's ephemeral range, which any process's next outgoing connection may
// take as its local port before the server binds it: mailgate then failed
// with "bind() ... (98: Address already in use)" (issue 13). So ports come
// from OUTSIDE /proc/sys/net/ipv4/ip_local_port_range, which Linux never
// assigns to an outgoing connection, starting at a random place per process
// and going up. Each is checked free by a listen on 127.0.0.1 and [::1]
// (and `host`), and reserved for this process's lifetime by a lock file
// (O_EXCL, holding our pid), so test processes running side by side never
// hand out the same port; a lock whose process is gone is taken over.
// mailgate does not report ports it bound, and the peers (HAProxy, Dovecot,
// Postfix) need their ports in a config file anyway, so the test picks them.

import { createServer } from "node:net";
import { mkdirSync, openSync, closeSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Below this, ports are for services; a test server stays above. */
const LOWEST = 10000;
/** Ports tried per call before giving up (bounded loop). */
const MAX_TRIES = 2000;
const LOCK_DIR = join(tmpdir(), "mailgate-test-ports");

/** The kernel's ephemeral range, [low, high]; Linux's default when unreadable. */
export function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "latin1").trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux, or no /proc
  }
  return [32768, 60999];
}

/** Candidate ports: [LOWEST, 65535] minus the ephemeral range. */
function candidates(): number[][] {
  const [lo, hi] = ephemeralRange();
  const spans: number[][] = [];
  if (lo - 1 >= LOWEST) spans.push([LOWEST, lo - 1]);
  if (hi + 1 <= 65535) spans.push([Math.max(LOWEST, hi + 1), 65535]);
  return spans;
}

const SPANS = candidates();
const TOTAL = SPANS.reduce((n, [a, b]) => n + b - a + 1, 0);
/** Next candidate index; random per process so parallel test processes start far apart. */
let next = Math.floor(Math.random() * Math.max(1, TOTAL));
const held: string[] = [];

function nth(i: number): number {
  for (const [a, b] of SPANS) {
    if (i <= b - a) return a + i;
    i -= b - a + 1;
  }
  throw new Error("unreachable");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Takes the cross-process reservation of `port`; false when a live process holds it. */
function reserve(port: number): boolean {
  const path = join(LOCK_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.push(path);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      let owner = 0;
      try {
        owner = Number(readFileSync(path, "latin1"));
      } catch {
        continue; // removed meanwhile: try again
      }
      // A lock being written has no pid yet: treat as live.
      if (owner === 0 || owner === process.pid || alive(owner)) return false;
      try {
        unlinkSync(path);
      } catch {
        // another process took it over first; the next create decides
      }
    }
  }
  return false;
}

function release(): void {
  for (const p of held.splice(0)) {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
}
// Bun runs process "exit" handlers; `deno test` does not, but fires "unload".
// A lock left behind (a killed process) is taken over once its pid is gone.
process.on("exit", release);
(globalThis as { addEventListener?: (type: string, f: () => void) => void }).addEventListener?.("unload", release);

/** Whether a listener can bind host:port now (EADDRNOTAVAIL, e.g. no IPv6, counts as free). */
function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", (e: Error & { code?: string }) => resolve(e.code === "EADDRNOTAVAIL" || e.code === "EAFNOSUPPORT"));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port no process listens on, outside the ephemeral range, reserved for this process. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  if (TOTAL === 0) throw new Error(`no ports outside the ephemeral range ${ephemeralRange().join("-")} above ${LOWEST}`);
  mkdirSync(LOCK_DIR, { recursive: true });
  for (let i = 0; i < MAX_TRIES; i++) {
    const port = nth(next++ % TOTAL);
    if (!reserve(port)) continue;
    let free = true;
    for (const h of new Set([host, "127.0.0.1", "::1"])) if (!(free = await bindable(port, h))) break;
    if (free) return port;
  }
  throw new Error(`no free port found in ${MAX_TRIES} tries`);
}

/** n distinct ports (see freePort). */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort());
  return out;
}

/** One free port per name: `const port = await namedPorts(["imap", "pop3"]); port.imap`. */
export async function namedPorts(names: readonly string[]): Promise<Record<string, number>> {
  const ps = await freePorts(names.length);
  return Object.fromEntries(names.map((n, i) => [n, ps[i]]));
}
