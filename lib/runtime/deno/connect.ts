// Runtime.connect for Deno: outgoing node:net connections (counted by the
// descriptor guard), with TLS over them within the same connect timeout.

import type * as net from "node:net";
import type { Conn, ConnectSpec } from "../types.ts";
import { nodeNet } from "../builtins.ts";
import { NetConn } from "./net_conn.ts";
import { bareHost, ipAddr } from "../shared/sock_addr.ts";
import { countSocket } from "./fd_guard.ts";

function describe(spec: ConnectSpec): string {
  return spec.kind === "tcp" ? `${spec.host}:${spec.port}` : `unix:${spec.path}`;
}

function connectSocket(spec: ConnectSpec): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = spec.kind === "tcp"
      ? nodeNet().connect({ host: bareHost(spec.host), port: spec.port, allowHalfOpen: true })
      : nodeNet().connect({ path: spec.path, allowHalfOpen: true });
    countSocket(sock);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    if (spec.timeoutMs !== undefined) {
      timer = setTimeout(() => fail(new Error(`connect to ${describe(spec)} timed out`)), spec.timeoutMs);
    }
    sock.once("error", fail);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", fail);
      resolve(sock);
    });
  });
}

export async function connect(spec: ConnectSpec): Promise<Conn> {
  const started = Date.now();
  const sock = await connectSocket(spec);
  const conn = new NetConn(
    sock,
    spec.kind === "tcp" ? spec.host : null,
    spec.kind === "unix" ? { unixRemote: spec.path } : { remote: ipAddr(bareHost(spec.host), spec.port) },
  );
  if (spec.tls) {
    // The handshake counts against the same connect timeout.
    const left = spec.timeoutMs !== undefined ? spec.timeoutMs - (Date.now() - started) : undefined;
    let timedOut = false;
    const timer = left !== undefined
      ? setTimeout(() => {
        timedOut = true;
        conn.destroy();
      }, Math.max(left, 0))
      : undefined;
    try {
      await conn.startTlsClient(spec.tls);
    } catch (e) {
      conn.destroy();
      if (timedOut) throw new Error(`connect to ${describe(spec)} timed out (TLS handshake)`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  return conn;
}
