// Node builtins loaded on first use instead of at start-up, through
// process.getBuiltinModule (a runtime API: only this folder calls it).
// Those that open sockets or processes (nodeNet, nodeTls, nodeDgram,
// nodeChildProcess, nodeStream) are for the runtime adapters only:
// tools/check_boundary.ts fails a file elsewhere that uses them. nodeCrypto
// and nodeDns are runtime-neutral (hashes, certificates, start-up lookups)
// and may be used anywhere.
// Measured (marginal cost on top of node:fs, path, process, os and buffer,
// which every start loads): under Bun node:tls with what it pulls in
// 10-15 ms, node:stream 6-12, node:net ~6, node:dgram ~1.5; under Deno
// node:tls 5-9, node:dgram ~4. A configuration without TLS, a resolver or
// syslog should not pay for them. process.getBuiltinModule loads a builtin
// synchronously, in both runtimes, so callers stay synchronous (the TLS code
// paths must not yield before they take over a socket's bytes).
// node:crypto costs ~9 ms under Bun, 3-8 under Deno.

import process from "node:process";

type Tls = typeof import("node:tls");
type Stream = typeof import("node:stream");
type Net = typeof import("node:net");
type Dgram = typeof import("node:dgram");
type ChildProcess = typeof import("node:child_process");
type Crypto = typeof import("node:crypto");
type Dns = typeof import("node:dns");

let tls: Tls | undefined;
let stream: Stream | undefined;
let net: Net | undefined;
let dgram: Dgram | undefined;
let childProcess: ChildProcess | undefined;
let crypto: Crypto | undefined;
let dns: Dns | undefined;

export function nodeCrypto(): Crypto {
  return crypto ??= process.getBuiltinModule("node:crypto") as Crypto;
}

export function nodeDns(): Dns {
  return dns ??= process.getBuiltinModule("node:dns") as Dns;
}

export function nodeTls(): Tls {
  return tls ??= process.getBuiltinModule("node:tls") as Tls;
}

export function nodeStream(): Stream {
  return stream ??= process.getBuiltinModule("node:stream") as Stream;
}

export function nodeNet(): Net {
  return net ??= process.getBuiltinModule("node:net") as Net;
}

export function nodeDgram(): Dgram {
  return dgram ??= process.getBuiltinModule("node:dgram") as Dgram;
}

export function nodeChildProcess(): ChildProcess {
  return childProcess ??= process.getBuiltinModule("node:child_process") as ChildProcess;
}
