// The descriptor guard: running out of file descriptors.
//
// Deno's node:net stops accepting for good once an accept fails with
// EMFILE: no error event, and no further connection is taken even after
// descriptors are free again (measured on Deno 2.9.6; other Deno internals
// even panic on EMFILE). So the adapter never lets accepting run the
// process out of descriptors: it counts its sockets, and when only
// FD_RESERVE descriptors would be left it stops listening; once twice that
// many are free again it listens afresh. The reserve leaves room for the
// backend and auth connections of the sessions already accepted. Unlike
// nginx, which stops accepting for accept_mutex_delay and leaves clients
// queued, node:net cannot stop accepting without closing its socket, so
// clients queued meanwhile are reset, and new ones refused until then.

import type * as net from "node:net";
import { readdirSync, readFileSync } from "node:fs";

/** Sockets this adapter holds (connections, and connects in progress). */
let liveSockets = 0;
/** Soft RLIMIT_NOFILE (Linux /proc), Infinity where it cannot be read. */
const FD_LIMIT = readFdLimit();
/** Descriptors kept free: 4 at a limit of 256, 64 from a limit of 4,096 up. */
const FD_RESERVE = Math.min(64, Math.max(4, Math.floor(FD_LIMIT / 64)));
/** Descriptors that are not our sockets (files, the DNS socket, Deno's own). */
let fdBase = -1;
let fdBaseAt = 0;
/** Within this of the reserve, fdBase is counted afresh (at most every 100 ms). */
const FD_RECOUNT_ZONE = 16;
let acceptStopped = false;

function readFdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m !== null ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

/** Descriptors not held by our sockets, from /proc (Linux); 0 where it cannot be read. */
function countFdBase(): void {
  try {
    fdBase = Math.max(0, readdirSync("/proc/self/fd").length - 1 - liveSockets); // -1: the listing's own
  } catch {
    fdBase = Math.max(fdBase, 0);
  }
  fdBaseAt = Date.now();
}

let recountPending = false;

/** Counts a socket (accepted or connecting) until it closes; may stop accepting. */
export function countSocket(sock: net.Socket): void {
  liveSockets++;
  sock.once("close", socketClosed);
  if (acceptStopped || FD_LIMIT === Infinity) return;
  if (fdBase < 0) countFdBase();
  checkFdHeadroom();
  // Near the reserve, count the real descriptors again, from a later task:
  // Deno accepts every ready connection before it reports the first, so
  // during that batch some open descriptors are not counted as sockets yet.
  if (
    !recountPending && liveSockets + fdBase >= FD_LIMIT - FD_RESERVE - FD_RECOUNT_ZONE &&
    Date.now() - fdBaseAt >= 100
  ) {
    recountPending = true;
    setTimeout(() => {
      recountPending = false;
      if (acceptStopped) return;
      countFdBase();
      checkFdHeadroom();
    }, 0);
  }
}

function checkFdHeadroom(): void {
  if (!acceptStopped && liveSockets + fdBase >= FD_LIMIT - FD_RESERVE) stopAccepting();
}

function socketClosed(): void {
  liveSockets--;
  if (acceptStopped && liveSockets + fdBase <= FD_LIMIT - 2 * FD_RESERVE) void startAccepting();
}

/** A listening server, to be closed and opened again around descriptor exhaustion. */
export interface Reopenable {
  /** null while accepting is stopped. */
  server: net.Server | null;
  closed: boolean;
  /** Opens the same listening socket again. */
  reopen(): Promise<net.Server>;
}
const openServers = new Set<Reopenable>();

/** From now on `s` is closed and reopened with the others. */
export function guardServer(s: Reopenable): void {
  openServers.add(s);
  if (fdBase < 0 && FD_LIMIT !== Infinity) countFdBase();
}

export function unguardServer(s: Reopenable): void {
  openServers.delete(s);
}

function stopAccepting(): void {
  acceptStopped = true;
  console.error(
    `mailgate: ${liveSockets + fdBase} of ${FD_LIMIT} file descriptors in use: ` +
      `not accepting until ${2 * FD_RESERVE} are free`,
  );
  for (const s of openServers) {
    s.server?.close();
    s.server = null;
  }
}

async function startAccepting(): Promise<void> {
  acceptStopped = false;
  for (const s of openServers) {
    if (s.server !== null) continue;
    try {
      const fresh = await s.reopen();
      // Closed (a reload), or accepting stopped again, while it was opening.
      if (s.closed || s.server !== null || acceptStopped) fresh.close();
      else s.server = fresh;
    } catch (e) {
      console.error(`mailgate: listening again after running out of file descriptors failed: ${e}`);
    }
  }
}
