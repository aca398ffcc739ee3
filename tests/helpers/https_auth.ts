// An HTTPS auth service for tests: a node:tls server in front of a MockAuth
// (plain HTTP), each TLS connection piped to one new connection to it. The
// mock sees the request bytes as usual; this side records what only TLS
// knows: the SNI name, the client certificate, handshakes that failed.

import { connect as netConnect } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MockAuth } from "./mock_auth.ts";

export interface HttpsAuthOptions {
  /** Fixture directory and the base name of the certificate/key pair (e.g. "auth_https"). */
  fixtures: string;
  cert: string;
  /** Require a client certificate signed by the fixtures' CA. */
  requireClientCert?: boolean;
}

export interface TlsSeen {
  /** SNI sent by the client (null: none). */
  servername: string | null;
  /** CN of the client certificate, or null. */
  clientCn: string | null;
}

export class HttpsAuth {
  readonly seen: TlsSeen[] = [];
  /** Handshakes that failed on this side (e.g. no client certificate). */
  handshakeErrors = 0;
  port = 0;
  readonly #server: Server;
  readonly #sockets = new Set<TLSSocket>();

  private constructor(readonly backend: MockAuth, o: HttpsAuthOptions) {
    const file = (n: string) => readFileSync(join(o.fixtures, n), "utf8");
    this.#server = createServer({
      cert: file(`${o.cert}.pem`),
      key: file(`${o.cert}.key`),
      requestCert: o.requireClientCert ?? false,
      rejectUnauthorized: o.requireClientCert ?? false,
      ca: o.requireClientCert ? file("ca.pem") : undefined,
    }, (tls) => this.#onSecure(tls));
    this.#server.on("tlsClientError", () => this.handshakeErrors++);
  }

  static async start(backend: MockAuth, o: HttpsAuthOptions): Promise<HttpsAuth> {
    const h = new HttpsAuth(backend, o);
    await new Promise<void>((r) => h.#server.listen(0, "127.0.0.1", () => r()));
    h.port = (h.#server.address() as { port: number }).port;
    return h;
  }

  #onSecure(tls: TLSSocket): void {
    const sn = (tls as TLSSocket & { servername?: string | false }).servername;
    const peer = tls.getPeerCertificate();
    this.seen.push({
      servername: typeof sn === "string" && sn !== "" ? sn : null,
      clientCn: peer && peer.subject ? String(peer.subject.CN) : null,
    });
    this.#sockets.add(tls);
    const plain = netConnect(this.backend.port, "127.0.0.1");
    const done = () => {
      this.#sockets.delete(tls);
      tls.destroy();
      plain.destroy();
    };
    tls.on("error", done);
    plain.on("error", done);
    tls.on("close", done);
    plain.on("close", done);
    tls.pipe(plain);
    plain.pipe(tls);
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
