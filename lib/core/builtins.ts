// Runtime-neutral node builtins that only some configurations need, loaded
// on first use instead of at start-up. Measured (marginal cost on top of
// node:fs, path, process, os and buffer, which every start loads):
// node:crypto ~9 ms under Bun, 3-8 under Deno. process.getBuiltinModule
// loads a builtin synchronously in both runtimes, so callers stay
// synchronous. Builtins that open sockets or processes (node:net, node:tls,
// node:dgram, node:child_process, node:stream) are the runtime's business:
// runtime/builtins.ts.

import process from "node:process";

type Crypto = typeof import("node:crypto");
type Dns = typeof import("node:dns");

let crypto: Crypto | undefined;
let dns: Dns | undefined;

export function nodeCrypto(): Crypto {
  return crypto ??= process.getBuiltinModule("node:crypto") as Crypto;
}

export function nodeDns(): Dns {
  return dns ??= process.getBuiltinModule("node:dns") as Dns;
}
