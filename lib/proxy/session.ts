// One client connection, from accept to the end of the relay. The session
// orchestrates: it feeds the client's bytes to the protocol's pre-auth
// machine and carries out its steps, asks the auth service, hands the
// backend side to BackendDial (backend_dial.ts) and then the connection
// pair to the relay. Protocol knowledge lives in the protocol modules
// (protocols.ts: machines, the pre-greeting hook, reply lines), the client
// certificate rules in client_cert_policy.ts.
//
// Phases: [PROXY header] -> [implicit TLS] -> [protocol's pre-greeting
// work: SMTP's host lookup and greeting delay] -> greeting -> pre-auth
// (machine) -> auth -> backend dial -> relay -> done. The `timeout`
// directive is a total budget for each of: accept..greeting, pre-auth,
// backend login.

import type { ListenConfig, ServerConfig } from "../config/types.ts";
import type { AuthService } from "../auth/types.ts";
import { refusedHintFor } from "../auth/route_notice.ts";
import type { ClientStep, Credentials, ForwardInfo, PreauthMachine } from "../core/machine.ts";
import type { EarlyInput, PreGreetingIo, Waited } from "../core/pre_greeting.ts";
import type { ErrorLog, LogContext } from "../log/error_log.ts";
import type { Conn, Runtime, SockAddr, TlsClientOptions, TlsServerOptions } from "../runtime/types.ts";
import { type ProxyHeader, ProxyHeaderReader } from "../proxy_protocol/reader.ts";
import { proxyHeaderToAddr, realIpTrusted } from "../proxy_protocol/real_ip.ts";
import { backendTlsMode } from "./backend_tls.ts";
import { BackendDial } from "./backend_dial.ts";
import { clientCertRefusal } from "./client_cert_policy.ts";
import type { OwnAddresses } from "./own_addresses.ts";
import { REAL_TIMERS, type Timers } from "./timers.ts";
import type { Resolver } from "../resolver/resolver.ts";
import { relay } from "./relay.ts";
import type { ProtocolModule } from "./protocols.ts";
import * as metrics from "../metrics/mail_metrics.ts";
import { loginForLog } from "../core/redact.ts";
import { concatBytes } from "../core/bytes.ts";
import { helloServerName } from "../tls/client_hello.ts";
import type { AccessLog, Outcome } from "../log/access_log.ts";
import { type LimitConn, tooManyConnections } from "../protect/limit_conn.ts";

/** Everything a session needs from the server that accepted it. */
export interface SessionEnv {
  runtime: Runtime;
  server: ServerConfig;
  listen: ListenConfig;
  protocol: ProtocolModule;
  log: ErrorLog;
  auth: AuthService;
  tls: TlsServerOptions | null;
  /** mailgate's access log for this server, if configured. */
  accessLog: AccessLog | null;
  /** SMTP client host lookups and Auth-Server host names (resolver), null when off. */
  resolver: Resolver | null;
  /** TLS options towards a backend address (proxy_ssl / proxy_starttls), null when off. */
  backendTls: ((addr: string) => TlsClientOptions) | null;
  /** mailgate's own listeners, which a backend dial refuses; null: no check. */
  own?: OwnAddresses | null;
  /**
   * Several server blocks share this listen address: the block a TLS
   * client's SNI names (proxy/server.ts). Implicit TLS takes all of its
   * settings; STARTTLS only its certificates. Absent: one block.
   */
  sni?: ((name: string | null) => SniBlock) | null;
  /** Timers for `timeout`, the greeting delay and Auth-Wait; the host's by default. */
  timers?: Timers;
  /** freenginx limit_conn for this server (lib/protect/limit_conn.ts); absent or null: none. */
  limitConn?: LimitConn | null;
  /** Called once when the session is completely over. */
  onDone(session: Session): void;
}

/** The settings of one server block that SNI can choose. */
export type SniBlock = Pick<
  SessionEnv,
  "server" | "listen" | "protocol" | "log" | "auth" | "tls" | "accessLog" | "resolver" | "backendTls" | "limitConn"
>;

let nextConnId = 1;

export function addrText(a: SockAddr): string {
  if (a.family === "unix") return "unix:";
  return a.address;
}

/**
 * What proxy_imap_id / proxy_pop3_xclient tell the backend: the client's
 * address after a trusted PROXY header (that header's destination as the
 * address it connected to), and the session id as the logs print it.
 */
function forwardInfo(id: number, client: SockAddr, local: SockAddr, header: ProxyHeader | null): ForwardInfo {
  const ip = (a: SockAddr) => (a.family === "unix" ? null : a.address);
  const port = (a: SockAddr) => (a.family === "unix" ? null : a.port);
  return {
    clientIp: ip(client),
    clientPort: port(client),
    localIp: header ? header.dstAddr : ip(local),
    localPort: header ? header.dstPort : port(local),
    sessionId: `*${id}`,
  };
}

export function addrPortText(a: SockAddr): string {
  if (a.family === "unix") return `unix:${a.path}`;
  return a.family === "ipv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

type Phase = "start" | "proxy" | "hello" | "pregreet" | "preauth" | "auth" | "backend" | "relay" | "done";

const isStarttls = (s: ClientStep): boolean => s.kind === "starttls";

/** A wait of the pre-greeting hook in progress (see #wait). */
interface PreGreetingWait {
  input: EarlyInput;
  settle(w: Waited<unknown>): void;
}

const OVER: Waited<never> = { kind: "over" };

export class Session {
  readonly id = nextConnId++;
  readonly ctx: LogContext;
  readonly startedAt = Date.now();
  phase: Phase = "start";
  #env: SessionEnv;
  #timers: Timers;
  #client: Conn;
  #backend: Conn | null = null;
  #dial: BackendDial | null = null;
  #machine: PreauthMachine | null = null;
  #timer: unknown = null;
  #waiting: PreGreetingWait | null = null;
  #pumping = false;
  #drainWaiter: (() => void) | null = null;
  #closed = false;
  #attempt = 0;
  #salt: string | null = null;
  /** SMTP: Client-Host / XCLIENT NAME= value; null for IMAP and POP3. */
  #clientHost: string | null = null;
  /** The client's address: the TCP peer, or a trusted PROXY header's source. */
  #clientAddr: SockAddr;
  /** A received PROXY header with addresses (Proxy-Protocol-* auth headers). */
  #proxyHeader: ProxyHeader | null = null;
  #proxyReader: ProxyHeaderReader | null = null;
  /** Client bytes that arrived before the greeting (with the PROXY header, or held by the pre-greeting hook). */
  #early: Uint8Array | null = null;
  #relayStop: (() => void) | null = null;
  /** Reading the ClientHello for its SNI (env.sni): bytes so far, and who waits. */
  #hello: { bytes: Uint8Array; done: (hello: Uint8Array) => void } | null = null;
  /** For the access log: bytes read from / written to the client, and how it ended. */
  #in = 0;
  #out = 0;
  #outcome: Outcome = "closed";
  /** This listener's counters (lib/metrics): resolved once, incremented per event. */
  #metrics: metrics.ListenerMetrics;
  /** The mechanism of the login under way, for the logins counter. */
  #mech = "none";
  #relayedUp = 0;
  #relayedDown = 0;
  /** Gives back this session's limit_conn counts; called once, at the end. */
  #releaseLimits: (() => void) | null = null;

  constructor(env: SessionEnv, client: Conn) {
    this.#env = env;
    this.#metrics = metrics.listenerMetrics(env.server.protocol, env.listen);
    this.#metrics.accepted.inc();
    this.#metrics.open.inc();
    this.#timers = env.timers ?? REAL_TIMERS;
    this.#client = client;
    this.#clientAddr = client.remote;
    this.ctx = {
      conn: this.id,
      client: addrText(client.remote),
      server: addrPortText(client.local),
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(): void {
    const env = this.#env;
    if (env.log.enabled("info")) {
      env.log.info(`client ${addrPortText(this.#client.remote)} connected to ${this.ctx.server}`, this.ctx);
    }
    this.#client.attach({
      data: (chunk) => this.#onClientData(chunk),
      drain: () => this.#onClientDrain(),
      end: () => {},
      close: () => this.#onClientClose(),
    });
    if (env.listen.proxyProtocol || env.listen.ssl) {
      // One budget for the PROXY header and the implicit TLS handshake.
      this.#arm(env.server.timeoutMs, () => this.#timedOut());
    }
    if (env.listen.proxyProtocol) {
      this.phase = "proxy";
      this.#proxyReader = new ProxyHeaderReader();
      return; // reading: #onProxyData
    }
    this.#afterProxyHeader(null);
  }

  /** PROXY protocol header bytes (tls_and_proxy_protocol.md §6, §7). */
  #onProxyData(chunk: Uint8Array): void {
    const env = this.#env;
    const r = this.#proxyReader!.push(chunk);
    if (r.kind === "more") return;
    this.#proxyReader = null;
    if (r.kind === "error") {
      env.log.error(r.log, this.ctx);
      this.#outcome = "rejected";
      this.#finish();
      return;
    }
    this.#proxyHeader = r.header;
    if (r.header && realIpTrusted(this.#client.remote, env.server.setRealIpFrom)) {
      const addr = proxyHeaderToAddr(r.header);
      if (addr) {
        this.#clientAddr = addr;
        this.ctx.client = addrText(addr);
      }
    }
    this.#afterProxyHeader(r.rest.length > 0 ? r.rest : null);
  }

  /** After the PROXY header (if any): implicit TLS (if any), then the greeting. */
  #afterProxyHeader(rest: Uint8Array | null): void {
    if (!this.#env.listen.ssl) {
      this.#early = rest;
      this.#beforeGreeting();
      return;
    }
    const sni = this.#env.sni;
    if (sni) {
      // Implicit TLS on a shared address: the named block's settings, all of them.
      this.#readHello(rest).then((hello) => {
        if (this.#closed) return;
        this.#env = { ...this.#env, ...sni(helloServerName(hello) ?? null) };
        this.phase = "start";
        this.#handshake(hello).then((ok) => {
          if (ok) this.#beforeGreeting();
        });
      });
      return;
    }
    this.phase = "start";
    this.#client.pause();
    this.#handshake(rest ?? undefined).then((ok) => {
      if (ok) this.#beforeGreeting();
    });
  }

  /**
   * Reads the first TLS record (the ClientHello) as plain bytes, so the
   * block can be chosen by its SNI before the handshake; the bytes then go
   * to startTls() as its prefix. Client reads are paused when it resolves.
   */
  #readHello(first: Uint8Array | null): Promise<Uint8Array> {
    const phase = this.phase;
    this.phase = "hello";
    return new Promise((resolve) => {
      this.#hello = {
        bytes: first ?? new Uint8Array(0),
        done: (hello) => {
          this.#client.pause();
          this.phase = phase;
          resolve(hello);
        },
      };
      if (first !== null && helloServerName(first) !== undefined) return this.#finishHello();
      this.#client.resume();
    });
  }

  #onHelloData(chunk: Uint8Array): void {
    const h = this.#hello;
    if (h === null) return;
    this.#in += chunk.length;
    h.bytes = concatBytes([h.bytes, chunk]);
    if (helloServerName(h.bytes) !== undefined) this.#finishHello();
  }

  #finishHello(): void {
    const h = this.#hello!;
    this.#hello = null;
    h.done(h.bytes);
  }

  /**
   * Server-side TLS (implicit, or after STARTTLS), then the client
   * certificate checks of ssl_verify_client (tls_and_proxy_protocol.md §4).
   * False when the session is over (handshake failed, or rejected).
   */
  async #handshake(prefix?: Uint8Array, tls = this.#env.tls): Promise<boolean> {
    const env = this.#env;
    try {
      const info = await this.#client.startTls(tls!, prefix);
      metrics.countTlsHandshake(info.protocol);
    } catch (e) {
      this.#metrics.tlsFailed.inc();
      env.log.info(`SSL handshake failed: ${(e as Error).message}`, this.ctx);
      this.#finish();
      return false;
    }
    if (this.#closed) return false;
    const refusal = clientCertRefusal(env.server.ssl.verifyClient, this.#client.tls, env.protocol.tlsRejects);
    if (refusal) {
      env.log.info(refusal.log, this.ctx);
      this.#outcome = "rejected";
      this.#write(refusal.reply);
      this.#closeClientGracefully();
      return false;
    }
    return true;
  }

  // ---- before the greeting ---------------------------------------------------

  /** The protocol's pre-greeting work, if it has any (SMTP), then the greeting. */
  async #beforeGreeting(): Promise<void> {
    if (this.#closed) return;
    const hook = this.#env.protocol.beforeGreeting;
    if (!hook) return this.#startDialogue();
    this.phase = "pregreet";
    const r = await hook(this.#preGreetingIo());
    if (this.#closed || this.phase !== "pregreet") return;
    switch (r.kind) {
      case "over":
        return;
      case "reject":
        this.#env.log.info(r.log, this.ctx);
        this.#in += r.data.length;
        this.#outcome = "rejected";
        this.#write(r.reply);
        this.#closeClientGracefully();
        return;
      case "greet":
        this.#clientHost = r.clientHost;
        this.#startDialogue();
    }
  }

  #preGreetingIo(): PreGreetingIo {
    const env = this.#env;
    const resolver = env.resolver;
    return {
      config: env.server,
      clientAddr: this.#clientAddr,
      lookupClientHost: resolver ? (ip) => resolver.lookupClientHost(ip) : null,
      early: () => this.#early,
      wait: (work, input) => this.#wait(work, input),
      sleep: (ms, input) => this.#wait(ms, input),
      log: (level, message) => env.log.log(level, message, this.ctx),
    };
  }

  /**
   * One wait of the pre-greeting hook: for `work` to settle, or for `work`
   * ms on the session's timer (which `timeout` then does not use). Client
   * bytes meanwhile end the wait or are held (#onClientData). Ends with
   * "over" when the session does.
   */
  #wait<T>(work: Promise<T> | number, input: EarlyInput): Promise<Waited<T>> {
    if (this.#closed) return Promise.resolve(OVER);
    return new Promise<Waited<T>>((resolve) => {
      const w: PreGreetingWait = {
        input,
        settle: (result) => {
          if (this.#waiting !== w) return;
          this.#waiting = null;
          this.#disarm();
          resolve(result as Waited<T>);
        },
      };
      this.#waiting = w;
      if (typeof work === "number") this.#arm(work, () => w.settle({ kind: "done", value: undefined }));
      else {
        this.#disarm();
        work.then((value) => w.settle({ kind: "done", value }));
      }
      if (input === "refuse") this.#client.resume(); // watch for clients that talk first
      else this.#client.pause();
    });
  }

  /** Client bytes before the greeting, while the pre-greeting hook waits. */
  #onEarlyData(chunk: Uint8Array): void {
    const w = this.#waiting;
    if (!w) return;
    if (w.input === "refuse") return w.settle({ kind: "talked", data: chunk.slice() });
    // Held: answered after the greeting.
    this.#early = this.#early ? concatBytes([this.#early, chunk]) : chunk.slice();
    this.#client.pause();
  }

  #startDialogue(): void {
    if (this.#closed) return;
    const env = this.#env;
    this.phase = "preauth";
    this.#machine = env.protocol.createPreauth({
      config: env.server,
      tls: this.#client.tls !== null,
      makeSalt: () => this.#makeSalt(),
    });
    this.#arm(env.server.timeoutMs, () => this.#timedOut());
    this.#write(this.#machine.greeting());
    const early = this.#early;
    this.#early = null;
    if (early) {
      this.#in += early.length;
      this.#machine.push(early);
      this.#pump();
    } else this.#client.resume();
  }

  #makeSalt(): string {
    if (this.#salt === null) {
      const r = new Uint32Array(1);
      crypto.getRandomValues(r);
      this.#salt = `<${r[0] & 0x7fffffff}.${Math.floor(Date.now() / 1000)}@${this.#env.server.serverName}>`;
    }
    return this.#salt;
  }

  // ---- timers ----------------------------------------------------------

  /** The session's one timer: arming replaces whatever was armed. */
  #arm(ms: number, fn: () => void): void {
    this.#disarm();
    this.#timer = this.#timers.set(() => {
      this.#timer = null;
      fn();
    }, ms);
  }

  #disarm(): void {
    if (this.#timer !== null) {
      this.#timers.clear(this.#timer);
      this.#timer = null;
    }
  }

  #timedOut(): void {
    if (this.#closed) return;
    this.#env.log.info("client timed out", this.ctx);
    this.#outcome = "timeout";
    this.#finish();
  }

  // ---- client I/O during pre-auth ----------------------------------------

  #write(data: Uint8Array): boolean {
    this.#out += data.length;
    return this.#client.write(data);
  }

  #onClientData(chunk: Uint8Array): void {
    if (this.phase === "proxy") return this.#onProxyData(chunk);
    if (this.phase === "hello") return this.#onHelloData(chunk);
    if (this.phase === "pregreet") return this.#onEarlyData(chunk);
    const phase = this.phase;
    if (!this.#machine || (phase !== "preauth" && phase !== "auth" && phase !== "backend")) return;
    this.#in += chunk.length;
    this.#machine.push(chunk);
    // Busy with a command (or the login): hold this chunk and read no more
    // until it is done. Pausing only when input actually arrives saves the
    // pause/resume pair (two epoll_ctl on Bun) for clients that wait for
    // each answer, nearly all of them.
    if (this.#pumping || phase !== "preauth") this.#client.pause();
    else this.#pump();
  }

  #onClientDrain(): void {
    const w = this.#drainWaiter;
    this.#drainWaiter = null;
    w?.();
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => (this.#drainWaiter = resolve));
  }

  #onClientClose(): void {
    if (this.phase === "relay") return; // the relay owns the ending
    this.#finish();
  }

  /**
   * Runs the machine one command at a time. Input that arrives while
   * anything is in progress pauses client reads (#onClientData), so the
   * machine's input stays bounded: the command, plus at most the chunk that
   * paused it and one read already in flight.
   */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const machine = this.#machine!;
    try {
      for (;;) {
        if (this.#closed || this.phase !== "preauth") return;
        const steps = machine.next();
        if (steps.length === 0) break;
        // STARTTLS: read nothing more as plaintext. The client may send its
        // ClientHello as soon as the reply is out, and the adapter must hold
        // it for startTls() rather than deliver it (the machine drops bytes
        // that come between the STARTTLS step and tlsStarted()).
        if (steps.some(isStarttls)) this.#client.pause();
        for (const step of steps) {
          if (this.#closed) return;
          const cont = await this.#step(step);
          if (!cont) return;
        }
      }
    } finally {
      this.#pumping = false;
    }
    if (!this.#closed && this.phase === "preauth") this.#client.resume();
  }

  /** Executes one step; false = stop pumping (session closing or handed over). */
  async #step(step: ClientStep): Promise<boolean> {
    switch (step.kind) {
      case "send":
        if (!this.#write(step.data)) await this.#drained();
        return !this.#closed;
      case "log":
        this.#env.log.log(step.level, step.message, this.ctx);
        return true;
      case "close":
        this.#outcome = step.reason ?? "rejected";
        this.#closeClientGracefully();
        return false;
      case "starttls":
        return await this.#starttls();
      case "auth":
        return await this.#authenticate(step.creds);
    }
  }

  async #starttls(): Promise<boolean> {
    const tls = this.#env.tls;
    if (!tls) {
      // The machine only asks when starttls is on/only, which requires certificates.
      this.#finish();
      return false;
    }
    // Set before the handshake (as nginx's s->starttls), so its failures and
    // the client-certificate checks log " using starttls" too.
    this.ctx.starttls = true;
    const sni = this.#env.sni;
    if (sni) {
      // After STARTTLS the SNI chooses only the certificate: the session
      // already runs with the default block's settings.
      const hello = await this.#readHello(null);
      if (this.#closed) return false;
      if (!(await this.#handshake(hello, sni(helloServerName(hello) ?? null).tls ?? tls))) return false;
    } else if (!(await this.#handshake())) return false;
    this.#machine!.tlsStarted();
    return true;
  }

  // ---- authentication ----------------------------------------------------

  async #authenticate(creds: Credentials): Promise<boolean> {
    const env = this.#env;
    this.phase = "auth";
    this.#disarm();
    this.#attempt++;
    this.ctx.login = loginForLog(creds.user);
    this.#mech = creds.method;
    const authStart = performance.now();
    const result = await env.auth.authenticate({
      protocol: env.server.protocol,
      creds,
      attempt: this.#attempt,
      clientIp: addrText(this.#clientAddr),
      clientHost: this.#clientHost,
      proxyProtocol: this.#proxyHeader,
      tls: this.#client.tls,
      verifyClient: env.server.ssl.verifyClient,
      passClientCert: env.server.authHttpPassClientCert,
      oauthPassthrough: env.server.proxyOauthPassthrough,
    }).catch((e): { kind: "error"; log: string } => ({ kind: "error", log: `auth failed: ${(e as Error).message}` }));
    this.#metrics.auth.observe((performance.now() - authStart) / 1000);
    if (result.kind !== "ok") {
      const outcome = result.kind === "error" ? "auth-error" : result.limited ? "limited" : "refused";
      metrics.countLogin(env.server.protocol, this.#mech, outcome);
    }
    if (this.#closed) return false;

    if (result.kind === "error") {
      env.log.error(result.log, this.ctx);
      this.#outcome = "auth-error";
      this.#internalError();
      return false;
    }
    if (result.kind === "refused") {
      if (result.log !== undefined) env.log.info(result.log, this.ctx);
      env.log.info(`client login failed: "${result.message}"`, this.ctx);
      const close = result.waitSec <= 0; // no Auth-Wait: the refusal ends the session
      if (!close) {
        await new Promise((r) => this.#timers.set(() => r(undefined), result.waitSec * 1000));
        if (this.#closed) return false;
      }
      // A refusal may take a round trip (an error challenge, the client's
      // answer, then the refusal line), so the dialogue resumes either way;
      // with `close` the machine ends it with a close step.
      const steps = this.#machine!.authRefused({
        message: result.message,
        errorCode: result.errorCode,
        saslError: result.saslError ?? null,
        close,
      });
      this.phase = "preauth";
      this.#arm(env.server.timeoutMs, () => this.#timedOut());
      for (const step of steps) if (!(await this.#step(step))) return false;
      return !this.#closed;
    }
    if (env.limitConn && !(await this.#limitConnections(env.limitConn, creds, result.headers ?? null))) return false;
    this.ctx.login = loginForLog(result.user);
    this.ctx.upstream = result.backendName;
    this.#loginToBackend(creds, result.addr, result.port, result.user, result.pass);
    return false;
  }

  /** limit_conn after the auth service's OK (freenginx): false when refused or closed meanwhile. */
  async #limitConnections(
    limits: LimitConn,
    creds: Credentials,
    authHeaders: readonly (readonly [string, string])[] | null,
  ): Promise<boolean> {
    const env = this.#env;
    const r = await limits.acquire(
      { remoteAddr: addrText(this.#clientAddr), remoteUser: creds.user, authHeaders },
      (level, message) => env.log.log(level, message, this.ctx),
    );
    if (r.ok) this.#releaseLimits = r.release;
    if (this.#closed) {
      this.#releaseLimits?.();
      this.#releaseLimits = null;
      return false;
    }
    if (r.ok) return true;
    this.#outcome = "rejected";
    metrics.countLogin(env.server.protocol, this.#mech, "limited");
    this.#write(tooManyConnections(env.server.protocol, creds.tag));
    this.#closeClientGracefully();
    return false;
  }

  #forwardInfo(): ForwardInfo {
    // The PROXY header counts only when it was trusted (it replaced the address).
    const trusted = this.#clientAddr !== this.#client.remote ? this.#proxyHeader : null;
    return forwardInfo(this.id, this.#clientAddr, this.#client.local, trusted);
  }

  #internalError(): void {
    if (this.phase === "backend") this.#outcome = "backend-error";
    this.#write(this.#env.protocol.internalError);
    this.#closeClientGracefully();
  }

  // ---- backend login -------------------------------------------------------

  /** Dials the backend (backend_dial.ts) within `timeout`; then the relay, or the failure's answer. */
  async #loginToBackend(creds: Credentials, addr: string, port: number, user: string, pass: string | null) {
    const env = this.#env;
    this.phase = "backend";
    const tlsMode = backendTlsMode(env.server.proxySsl);
    const dial = new BackendDial({
      connect: (spec) =>
        env.runtime.connect(spec).catch((e) => {
          const hint = refusedHintFor(env.auth, this.ctx.upstream ?? `${addr}:${port}`, e);
          if (hint !== null) env.log.notice(hint, this.ctx);
          throw e;
        }),
      addr,
      port,
      lookupHost: env.resolver ? (name) => env.resolver!.lookupHost(name) : null,
      upstream: this.ctx.upstream ?? `${addr}:${port}`,
      authKind: env.server.authTable ? "table" : "http",
      own: env.own ?? null,
      connectTimeoutMs: env.server.timeoutMs,
      tlsMode,
      tls: env.backendTls ? env.backendTls(addr) : null,
      proxyProtocol: env.server.proxyProtocol,
      client: { addr: this.#clientAddr, local: this.#client.local, tls: this.#client.tls },
      serverTls: env.tls,
      createLogin: () =>
        env.protocol.createBackendLogin({
          config: env.server,
          creds,
          user,
          pass,
          clientAddr: addrText(this.#clientAddr),
          clientHost: this.#clientHost ?? "[UNAVAILABLE]",
          backendTls: tlsMode,
          forward: this.#forwardInfo(),
        }),
    });
    this.#dial = dial;
    this.#arm(env.server.timeoutMs, () => {
      env.log.info("upstream timed out", this.ctx);
      metrics.countLogin(env.server.protocol, this.#mech, "backend-error");
      metrics.countBackendError(this.ctx.upstream ?? `${addr}:${port}`, "connect");
      dial.cancel();
      this.#internalError();
      this.#outcome = "timeout";
    });
    const r = await dial.result;
    this.#dial = null;
    if (this.#closed || this.phase !== "backend") {
      // Timed out or ended meanwhile; a result that came in the same turn is dropped.
      if (r.kind === "ok") r.backend.destroy();
      return;
    }
    this.#disarm();
    switch (r.kind) {
      case "cancelled":
        return; // only the session cancels, and it has moved on
      case "ok":
        return this.#startRelay(r.backend, r.toClient);
      case "fail":
        if (r.log) env.log.log(r.log.level, r.log.message, this.ctx);
        this.#outcome = r.blame === "auth" ? "auth-error" : "backend-error";
        metrics.countLogin(env.server.protocol, this.#mech, this.#outcome);
        if (r.blame === "backend") {
          // A reply to pass on means the backend answered the login; else it was never reached.
          metrics.countBackendError(this.ctx.upstream ?? `${addr}:${port}`, r.toClient ? "login" : "connect");
        }
        this.#write(r.toClient ?? env.protocol.internalError);
        this.#closeClientGracefully();
    }
  }

  #startRelay(backend: Conn, toClient: Uint8Array): void {
    const env = this.#env;
    this.#backend = backend;
    this.phase = "relay";
    env.log.info("client logged in", this.ctx);
    const pending = this.#machine!.takeInput();
    this.#machine = null;
    this.#outcome = "proxied";
    metrics.countLogin(env.server.protocol, this.#mech, "ok");
    metrics.countUpstreamLogin(this.ctx.upstream ?? "-");
    this.#write(toClient);
    if (pending.length > 0) backend.write(pending);
    this.#client.resume();
    const r = relay(this.#client, backend, {
      timeoutMs: env.server.proxyTimeoutMs,
      onEnd: (reason, stats) => {
        this.#in += stats.up;
        this.#out += stats.down;
        this.#relayedUp = stats.up;
        this.#relayedDown = stats.down;
        if (reason === "timeout") {
          env.log.info("client timed out", this.ctx);
          this.#outcome = "timeout";
        }
        env.log.info("proxied session done", this.ctx);
        this.#relayStop = null;
        this.#finish();
      },
    });
    this.#relayStop = r.stop;
  }

  // ---- ending ----------------------------------------------------------------

  #closeClientGracefully(): void {
    this.phase = "done";
    this.#disarm();
    this.#client.end();
    this.#backend?.destroy();
  }

  /** Ends the session now (idempotent). */
  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.phase = "done";
    this.#disarm();
    this.#dial?.cancel();
    this.#waiting?.settle(OVER);
    this.#relayStop?.();
    this.#releaseLimits?.();
    this.#releaseLimits = null;
    this.#client.destroy();
    this.#backend?.destroy();
    const w = this.#drainWaiter;
    this.#drainWaiter = null;
    w?.();
    this.#env.accessLog?.log({
      protocol: this.#env.server.protocol,
      client: addrPortText(this.#clientAddr),
      server: this.ctx.server,
      login: this.ctx.login ?? null,
      upstream: this.ctx.upstream ?? null,
      tls: this.#client.tls === null ? "no" : this.ctx.starttls ? "starttls" : "ssl",
      bytesIn: this.#in,
      bytesOut: this.#out,
      durationMs: Date.now() - this.startedAt,
      outcome: this.#outcome,
    });
    metrics.sessionEnded(this.#metrics, this.#outcome, this.#relayedUp, this.#relayedDown);
    this.#env.onDone(this);
  }

  /** Fast stop, or the shutdown timeout: ends the session now. */
  abort(): void {
    this.#outcome = "shutdown";
    this.#finish();
  }
}
