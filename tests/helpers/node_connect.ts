// A test-only `connect` that implements Conn over node:net, for client-side
// tests that need a real socket when the runtime adapters (lib/runtime/) are
// not what is under test. No TLS: startTls*/startTlsClient reject.

import net from "node:net";
import type { Conn, ConnectSpec, ConnEvents, SockAddr, TlsInfo } from "../../lib/runtime/types.ts";

function sockAddr(
  family: string | undefined,
  address: string | undefined,
  port: number | undefined,
): SockAddr {
  if (address === undefined) return { family: "unix", path: "" };
  return { family: family === "IPv6" ? "ipv6" : "ipv4", address, port: port ?? 0 };
}

class NodeConn implements Conn {
  readonly tls: TlsInfo | null = null;
  readonly remote: SockAddr;
  readonly local: SockAddr;
  private events: ConnEvents | null = null;
  private error: Error | undefined;

  constructor(private readonly sock: net.Socket) {
    this.remote = sockAddr(sock.remoteFamily, sock.remoteAddress, sock.remotePort);
    this.local = sockAddr(sock.localFamily, sock.localAddress, sock.localPort);
    sock.on("error", (e) => (this.error = e));
    sock.on("close", () => this.events?.close(this.error));
  }

  attach(events: ConnEvents): void {
    const first = this.events === null;
    this.events = events;
    if (!first) return;
    // A 'data' listener switches the socket to flowing mode: reading starts here.
    this.sock.on("data", (d: Uint8Array) => this.events?.data(d));
    this.sock.on("drain", () => this.events?.drain());
    this.sock.on("end", () => this.events?.end());
  }

  write(chunk: Uint8Array): boolean {
    return this.sock.write(chunk);
  }
  pause(): void {
    this.sock.pause();
  }
  resume(): void {
    this.sock.resume();
  }
  startTls(): Promise<TlsInfo> {
    return Promise.reject(new Error("node_connect: no TLS"));
  }
  startTlsClient(): Promise<TlsInfo> {
    return Promise.reject(new Error("node_connect: no TLS"));
  }
  end(): void {
    this.sock.end();
  }
  destroy(): void {
    this.sock.destroy();
  }
}

/** Open a TCP or UNIX connection; rejects with the node:net error (code ECONNREFUSED, ...). */
export function nodeConnect(spec: ConnectSpec): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = spec.kind === "unix"
      ? net.connect({ path: spec.path })
      : net.connect({ host: spec.host, port: spec.port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (spec.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        sock.destroy(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" }));
      }, spec.timeoutMs);
    }
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.off("error", onError);
      sock.setNoDelay(true);
      resolve(new NodeConn(sock));
    });
  });
}
