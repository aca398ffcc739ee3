// The Bun adapter: Bun.listen/Bun.connect sockets with shared handler
// objects (per-connection state lives in socket.data), and Bun's own TLS via
// socket.upgradeTLS for STARTTLS and for implicit TLS at byte 0.
//
// Why native sockets: 2.4 KB per idle proxied session and ~1.2 GB/s relay,
// the best of all the options measured (platform-notes Q3/Q4). Bun's native
// TLS has no SNI callback and no per-listener reload, but mailgate's TLS
// settings are per server block and upgradeTLS takes options per connection.
//
// Bun quirks handled in conn.ts (Q2/Q3):
// * data chunks are views into a buffer Bun reuses: copied when queued;
// * write() returns how many bytes went out; the rest is ours to queue;
// * after upgradeTLS the old (raw) socket keeps calling its handlers with
//   copies of the ciphertext and its own close: every event from a socket
//   that is not the connection's current one is ignored.
//
// Files: conn.ts (the Conn and the shared socket handlers), listen.ts,
// connect.ts, tls_contexts.ts (kept TLS contexts, per-connection TLS
// options), tls_options.ts (node:tls context options from ours),
// layered_tls.ts (node:tls over bytes already read), api_types.ts (the
// part of Bun's API used, typed). This file assembles the Runtime.

import process from "node:process";
import type { Runtime, SignalName } from "../types.ts";
import { bunApi } from "./api_types.ts";
import { datagram } from "../shared/datagram.ts";
import { spawnSelf } from "../shared/spawn_self.ts";
import { RUNTIME_SUPPORT } from "../capabilities.ts";
import { listen } from "./listen.ts";
import { connect } from "./connect.ts";

export const runtime: Runtime = {
  name: "bun",
  support: RUNTIME_SUPPORT.bun,
  version: bunApi().version,
  listen,
  connect,
  datagram,
  spawnSelf,
  onSignal(signal: SignalName, handler: () => void): void {
    process.on(signal, handler);
  },
  args: () => process.argv.slice(2),
  exit: (code: number): never => process.exit(code),
  pid: process.pid,
};
