// The Deno adapter: node:net sockets (Deno's libuv-style loop) for every
// listener and outgoing connection, with node:tls as the TLS layer
// (net_conn.ts); Deno's own API only for signals, arguments and exit.
//
// Why not Deno.listen/Deno.connect, which the first versions used: under
// load their ops starve. In soaks at 7,920 concurrent sessions 0.2-3.5 %
// stalled for 30 s or more; tools/deno_stall_probe.ts reproduces it with a
// bare Deno.listen server (0.15-1.2 % at 7,900 connections, with and
// without listen-queue overflows), while the same Deno serving through
// node:net stalled none in four runs, served 38-50 % more sessions and
// holds no read buffer per idle connection.
// Deno's own TLS has no server STARTTLS, client certificates, SNI or peer
// certificate information either (platform-notes Q2).
//
// The pieces: listen.ts (listening, dual-stack port sharing), servers.ts
// (one node:net listening server), fd_guard.ts (the descriptor reserve),
// connect.ts (outgoing connections), net_conn.ts (a connection).

import type { Runtime, SignalName } from "../types.ts";
import { listen } from "./listen.ts";
import { connect } from "./connect.ts";
import { datagram } from "../shared/datagram.ts";
import { spawnSelf } from "../shared/spawn_self.ts";
import { RUNTIME_SUPPORT } from "../capabilities.ts";

export const runtime: Runtime = {
  name: "deno",
  support: RUNTIME_SUPPORT.deno,
  version: Deno.version.deno,
  listen,
  connect,
  datagram,
  spawnSelf,
  onSignal(signal: SignalName, handler: () => void): void {
    // Note: on Deno, SIGUSR1 also starts the V8 inspector (platform-notes Q5).
    Deno.addSignalListener(signal, handler);
  },
  args: () => [...Deno.args],
  exit: (code: number): never => Deno.exit(code),
  pid: Deno.pid,
};
