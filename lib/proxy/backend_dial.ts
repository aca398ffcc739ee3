// The way from an auth answer to a logged-in backend connection: refuse
// an answer that names one of mailgate's own listeners, connect (TLS from
// byte 0 with proxy_ssl), send the PROXY header (proxy_protocol), then
// drive the protocol's backend-login machine, with the backend STARTTLS
// it may ask for (proxy_starttls). The session gets one result: a backend
// ready for the relay plus the bytes the client must see, or a failure to
// log and answer.
//
// The session owns the `timeout` budget and the client: when the budget
// runs out or the client goes, it calls cancel(), the one way a dial is
// stopped from outside; the backend is then destroyed and the result is
// "cancelled".

import type { BackendLogin, BackendStep } from "../core/machine.ts";
import type { LogLevel } from "../config/types.ts";
import type {
  Conn,
  ConnectSpec,
  ConnEvents,
  SockAddr,
  TlsClientOptions,
  TlsInfo,
  TlsServerOptions,
} from "../runtime/types.ts";
import { proxyV1, proxyV2 } from "../proxy_protocol/writer.ts";
import { ownCertFor } from "../proxy_protocol/own_cert.ts";
import { describeSocketError } from "../core/errno.ts";
import type { BackendTlsMode } from "./backend_tls.ts";
import type { OwnAddresses } from "./own_addresses.ts";
import { parseIPv4, parseIPv6 } from "../core/ip.ts";
import type { HostAddresses } from "../resolver/host_addresses.ts";
import { resolveErrorText } from "../resolver/client_host.ts";

export interface DialRequest {
  connect(spec: ConnectSpec): Promise<Conn>;
  /** Backend address (an IP literal, or a host name: mailgate extension) and port, from the auth answer. */
  addr: string;
  /** The server's resolver for an Auth-Server host name; null when no `resolver` is configured. */
  lookupHost?: ((name: string) => Promise<HostAddresses>) | null;
  port: number;
  /** How the auth service named it, for log lines: `upstream` of the log context. */
  upstream: string;
  /** "table" (auth_table) or "http" (auth_http): which answer the self-connect error names. */
  authKind: "table" | "http";
  /** mailgate's own listeners: never connect to one of them. */
  own: OwnAddresses | null;
  /** Budget for the TCP connect (and the handshake with proxy_ssl). */
  connectTimeoutMs: number;
  tlsMode: BackendTlsMode;
  /** Client TLS options for this backend; needed unless tlsMode is "off". */
  tls: TlsClientOptions | null;
  /** proxy_protocol towards the backend, and what the header describes. */
  proxyProtocol: "off" | "v1" | "v2";
  client: { addr: SockAddr; local: SockAddr; tls: TlsInfo | null };
  /** The listener's TLS options (the PROXY v2 header names our certificate). */
  serverTls: TlsServerOptions | null;
  /** Builds the protocol's login machine (called once connected). */
  createLogin(): BackendLogin;
}

export type DialResult =
  /** Logged in: write toClient to the client, then relay. The backend is paused; the relay resumes it. */
  | { kind: "ok"; backend: Conn; toClient: Uint8Array }
  /**
   * Failed; the backend (if any) is gone. The client gets toClient, or the
   * protocol's internal-error reply when null. `blame`: which side of the
   * exchange was wrong, for the access log.
   */
  | {
    kind: "fail";
    log: { level: LogLevel; message: string } | null;
    toClient: Uint8Array | null;
    blame: "auth" | "backend";
  }
  /** cancel() was called. */
  | { kind: "cancelled" };

type State = "connecting" | "login" | "tls" | "over";

export class BackendDial implements ConnEvents {
  readonly result: Promise<DialResult>;
  #req: DialRequest;
  #state: State = "connecting";
  #backend: Conn | null = null;
  #login: BackendLogin | null = null;
  #resolve!: (r: DialResult) => void;

  constructor(req: DialRequest) {
    this.#req = req;
    this.result = new Promise((r) => (this.#resolve = r));
    this.#start();
  }

  /** Stops the dial now (timeout, client gone). Idempotent; no effect once the result is in. */
  cancel(): void {
    this.#end({ kind: "cancelled" });
  }

  /** The single exit: records the result, and drops the backend unless it is handed over. */
  #end(r: DialResult): void {
    if (this.#state === "over") return;
    this.#state = "over";
    if (r.kind !== "ok") this.#backend?.destroy();
    this.#backend = null;
    this.#resolve(r);
  }

  /**
   * The address to connect to: the Auth-Server literal, or the first
   * address of its host name through the resolver (null: failed, logged).
   */
  async #address(): Promise<string | null> {
    const req = this.#req;
    if (parseIPv4(req.addr) !== null || parseIPv6(req.addr) !== null) return req.addr;
    if (!req.lookupHost) {
      this.#fail(
        "error",
        `Auth-Server "${req.addr}" is a host name, but no "resolver" is defined`,
        "auth",
      );
      return null;
    }
    const r = await req.lookupHost(req.addr);
    if (r.ok) return r.addresses[0];
    this.#fail(
      "error",
      `Auth-Server "${req.addr}" could not be resolved (${r.code}: ${resolveErrorText(r.code)})`,
    );
    return null;
  }

  #fail(level: LogLevel, message: string, blame: "auth" | "backend" = "backend"): void {
    this.#end({ kind: "fail", log: { level, message }, toClient: null, blame });
  }

  async #start(): Promise<void> {
    const req = this.#req;
    const addr = await this.#address();
    if (addr === null || this.#state !== "connecting") return;
    const own = req.own?.listenerFor(addr, req.port) ?? null;
    if (own !== null) {
      const answer = req.authKind === "http"
        ? `the auth answer (Auth-Server: ${req.addr}, Auth-Port: ${req.port})`
        : `the auth table (${req.upstream})`;
      return this.#fail(
        "error",
        `${answer} names mailgate's own listener ${own}, not connecting to itself`,
        "auth",
      );
    }
    let backend: Conn;
    try {
      backend = await req.connect({
        kind: "tcp",
        host: addr,
        port: req.port,
        timeoutMs: req.connectTimeoutMs,
        ...(req.tlsMode === "ssl" && req.tls ? { tls: req.tls } : {}),
      });
    } catch (e) {
      return this.#fail("error", `connect() to ${req.upstream} failed (${describeSocketError(e)})`);
    }
    if (this.#state !== "connecting") {
      backend.destroy(); // cancelled while connecting
      return;
    }
    this.#backend = backend;
    this.#state = "login";
    if (req.proxyProtocol !== "off") {
      // Sent before anything else, in one write (tls_and_proxy_protocol.md §8).
      const c = req.client;
      backend.write(
        req.proxyProtocol === "v1"
          ? proxyV1(c.addr, c.local)
          : proxyV2(c.addr, c.local, c.tls, c.tls ? ownCertFor(req.serverTls) : {}),
      );
    }
    this.#login = req.createLogin();
    backend.attach(this);
  }

  /**
   * Carries out the machine's steps in order. Runs inside the backend's
   * data() (the chunk is only valid there), so "done" hands over before
   * another event can arrive.
   */
  #run(steps: BackendStep[]): void {
    const backend = this.#backend!;
    for (const s of steps) {
      if (this.#state !== "login") return;
      switch (s.kind) {
        case "send":
          backend.write(s.data);
          break;
        case "starttls":
          // Always the last step of its batch; the login goes on after the handshake.
          this.#state = "tls";
          this.#startTls(backend);
          return;
        case "fail":
          return this.#end({ kind: "fail", log: s.log, toClient: s.toClient, blame: "backend" });
        case "done":
          // Nothing more is read until the relay takes over and resumes it.
          backend.pause();
          return this.#end({ kind: "ok", backend, toClient: s.toClient });
      }
    }
  }

  async #startTls(backend: Conn): Promise<void> {
    try {
      await backend.startTlsClient(this.#req.tls!);
    } catch (e) {
      if (this.#state === "tls") {
        this.#fail("error", `upstream SSL handshake failed: ${(e as Error).message}`);
      }
      return;
    }
    if (this.#state !== "tls") return;
    this.#state = "login";
    this.#run(this.#login!.tlsStarted());
  }

  // ---- backend events during the login ---------------------------------------

  data(chunk: Uint8Array): void {
    if (this.#state === "login") this.#run(this.#login!.push(chunk));
  }

  drain(): void {}

  end(): void {}

  close(): void {
    // Closed by us (cancel, or a failure already reported) ends nothing new.
    if (this.#state === "login" || this.#state === "tls") {
      this.#fail("error", "upstream prematurely closed connection");
    }
  }
}
