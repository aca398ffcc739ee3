// Node builtins that only some configurations need, loaded on first use
// instead of at start-up. Measured (marginal cost on top of node:fs, path,
// process, os and buffer, which every start loads): under Bun node:tls with
// what it pulls in 10-15 ms, node:crypto ~9, node:stream 6-12, node:net ~6,
// node:dgram ~1.5; under Deno node:tls 5-9, node:crypto 3-8, node:dgram ~4.
// A configuration without TLS, a resolver or syslog should not pay for them.
// process.getBuiltinModule loads a builtin synchronously, in both runtimes,
// so callers stay synchronous (the TLS code paths must not yield before
// they take over a socket's bytes).
// Runtime-neutral: only node: builtins that both runtimes provide.

import process from "node:process";

type Tls = typeof import("node:tls");
type Crypto = typeof import("node:crypto");
type Stream = typeof import("node:stream");
type Net = typeof import("node:net");
type Dgram = typeof import("node:dgram");
type Dns = typeof import("node:dns");
type ChildProcess = typeof import("node:child_process");

let tls: Tls | undefined;
let crypto: Crypto | undefined;
let stream: Stream | undefined;
let net: Net | undefined;
let dgram: Dgram | undefined;
let dns: Dns | undefined;
let childProcess: ChildProcess | undefined;

export function nodeTls(): Tls {
  return tls ??= process.getBuiltinModule("node:tls") as Tls;
}

export function nodeCrypto(): Crypto {
  return crypto ??= process.getBuiltinModule("node:crypto") as Crypto;
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

export function nodeDns(): Dns {
  return dns ??= process.getBuiltinModule("node:dns") as Dns;
}

export function nodeChildProcess(): ChildProcess {
  return childProcess ??= process.getBuiltinModule("node:child_process") as ChildProcess;
}
