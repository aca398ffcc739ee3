// One client connection, from accept to the end of the relay. The session
// drives the protocol's pure machines (pre-auth dialogue, backend login)
// with real sockets, timers and the auth service; it holds no protocol
// knowledge of its own.
//
// Phases: [PROXY header] -> [implicit TLS] -> [SMTP: host lookup, greeting
// delay] -> greeting -> pre-auth (machine) -> auth -> backend login
// (machine) -> relay -> done. The `timeout` directive is a total budget for
// each of: accept..greeting, pre-auth, backend login.

import type { ListenConfig, ServerConfig } from "../config/types.ts";
import type { AuthService } from "../auth/types.ts";
import { refusedHintFor } from "../auth/route_notice.ts";
import type { BackendLogin, BackendStep, ClientStep, Credentials, PreauthMachine } from "../core/machine.ts";
import type { ErrorLog, LogContext } from "../log/error_log.ts";
import type { Conn, Runtime, SockAddr, TlsClientOptions, TlsServerOptions } from "../runtime/types.ts";
import { type ProxyHeader, ProxyHeaderReader } from "../proxy_protocol/reader.ts";
import { proxyHeaderToAddr, realIpTrusted } from "../proxy_protocol/real_ip.ts";
import { proxyV1, proxyV2 } from "../proxy_protocol/writer.ts";
import { ownCertFor } from "../proxy_protocol/own_cert.ts";
import { backendTlsMode } from "./backend_tls.ts";
import type { Resolver } from "../resolver/resolver.ts";
import { relay } from "./relay.ts";
import type { ProtocolModule } from "./protocols.ts";
import { loginForLog } from "../core/redact.ts";
import { concatBytes } from "../core/bytes.ts";
import { describeSocketError } from "../core/errno.ts";
import { VERIFY_ERRORS_NO_CA } from "../tls/tls_verify.ts";
import type { AccessLog, Outcome } from "../log/access_log.ts";

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
  /** SMTP client host lookups (resolver), null when off. */
  resolver: Resolver | null;
  /** TLS options towards a backend address (proxy_ssl / proxy_starttls), null when off. */
  backendTls: ((addr: string) => TlsClientOptions) | null;
  /** Called once when the session is completely over. */
  onDone(session: Session): void;
}

let nextConnId = 1;

export function addrText(a: SockAddr): string {
  if (a.family === "unix") return "unix:";
  return a.address;
}

export function addrPortText(a: SockAddr): string {
  if (a.family === "unix") return `unix:${a.path}`;
  return a.family === "ipv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

type Phase = "start" | "proxy" | "resolve" | "delay" | "preauth" | "auth" | "backend" | "relay" | "done";

const isStarttls = (s: ClientStep): boolean => s.kind === "starttls";

export class Session {
  readonly id = nextConnId++;
  readonly ctx: LogContext;
  readonly startedAt = Date.now();
  phase: Phase = "start";
  #env: SessionEnv;
  #client: Conn;
  #backend: Conn | null = null;
  #machine: PreauthMachine | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
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
  /** Client bytes that arrived with the PROXY header, before the greeting. */
  #early: Uint8Array | null = null;
  #relayStop: (() => void) | null = null;
  /** For the access log: bytes read from / written to the client, and how it ended. */
  #in = 0;
  #out = 0;
  #outcome: Outcome = "closed";

  constructor(env: SessionEnv, client: Conn) {
    this.#env = env;
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
      this.#greet();
      return;
    }
    this.phase = "start";
    this.#client.pause();
    this.#handshake(rest ?? undefined).then((ok) => {
      if (ok) this.#greet();
    });
  }

  /**
   * Server-side TLS (implicit, or after STARTTLS), then the client
   * certificate checks of ssl_verify_client (tls_and_proxy_protocol.md §4).
   * False when the session is over (handshake failed, or rejected).
   */
  async #handshake(prefix?: Uint8Array): Promise<boolean> {
    try {
      await this.#client.startTls(this.#env.tls!, prefix);
    } catch (e) {
      this.#env.log.info(`SSL handshake failed: ${(e as Error).message}`, this.ctx);
      this.#finish();
      return false;
    }
    if (this.#closed) return false;
    const reject = this.#clientCertRejection();
    if (reject) {
      this.#outcome = "rejected";
      this.#write(reject);
      this.#closeClientGracefully();
      return false;
    }
    return true;
  }

  /** The line that refuses this client's certificate, or null when it may go on. */
  #clientCertRejection(): Uint8Array | null {
    const env = this.#env;
    const mode = env.server.ssl.verifyClient;
    const tls = this.#client.tls;
    if (mode === "off" || !tls) return null;
    if (!tls.peerCert) {
      if (mode !== "on") return null;
      env.log.info("client sent no required SSL certificate", this.ctx);
      return env.protocol.tlsRejects.noCert;
    }
    if (tls.verifyError === null) return null;
    if (mode === "optional_no_ca" && VERIFY_ERRORS_NO_CA.has(tls.verifyError)) return null;
    env.log.info(`client SSL certificate verify error: (${tls.verifyError})`, this.ctx);
    return env.protocol.tlsRejects.certError;
  }

  /**
   * SMTP first looks up the client's host name (resolver) and waits
   * smtp_greeting_delay; a client that talks during the delay is refused.
   * Other protocols greet at once.
   */
  #greet(): void {
    if (this.#closed) return;
    const env = this.#env;
    if (env.server.protocol !== "smtp") return this.#startDialogue();
    const addr = this.#clientAddr;
    // smtp.md §2, in nginx's order: no resolver first, then a unix-socket client.
    if (!env.resolver) this.#clientHost = "[UNAVAILABLE]";
    else if (addr.family === "unix") this.#clientHost = "[TEMPUNAVAIL]";
    else {
      // smtp.md §2: the greeting waits for the lookup (bounded by resolver_timeout).
      // With a greeting delay, talking during the lookup already counts as early.
      this.phase = "resolve";
      this.#disarm(); // resolver_timeout bounds the lookup, not `timeout`
      if (env.server.smtpGreetingDelayMs > 0) this.#client.resume();
      else this.#client.pause();
      env.resolver.lookupClientHost(addr.address).then((r) => {
        if (this.#closed || this.phase !== "resolve") return;
        if (r.log) env.log.log(r.log.level, r.log.message, this.ctx);
        this.#clientHost = r.host;
        this.#afterLookup();
      });
      return;
    }
    this.#afterLookup();
  }

  /** SMTP after the client host lookup: the greeting delay, then the greeting. */
  #afterLookup(): void {
    const env = this.#env;
    const delay = env.server.smtpGreetingDelayMs;
    if (delay <= 0) return this.#startDialogue();
    if (this.#early) return this.#rejectEarlyTalker(this.#early);
    this.phase = "delay";
    this.#arm(delay, () => this.#startDialogue());
    this.#client.resume(); // watch for clients that talk first
  }

  /** A client that sent data before the SMTP greeting: 503, then close. */
  #rejectEarlyTalker(chunk: Uint8Array): void {
    const early = this.#env.protocol.earlyTalker;
    if (!early) return;
    this.#env.log.info(early.log(chunk), this.ctx);
    this.#in += chunk.length;
    this.#outcome = "rejected";
    this.#write(early.reply);
    this.#closeClientGracefully();
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

  #arm(ms: number, fn: () => void): void {
    this.#disarm();
    this.#timer = setTimeout(fn, ms);
  }

  #disarm(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  #timedOut(): void {
    this.#timer = null;
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
    if (this.phase === "delay") return this.#rejectEarlyTalker(chunk);
    if (this.phase === "resolve") {
      if (this.#env.server.smtpGreetingDelayMs > 0) return this.#rejectEarlyTalker(chunk);
      // No delay: commands sent during the lookup are answered after the greeting.
      this.#early = this.#early ? concatBytes([this.#early, chunk]) : chunk.slice();
      this.#client.pause();
      return;
    }
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
    if (!(await this.#handshake())) return false;
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
    }).catch((e): { kind: "error"; log: string } => ({ kind: "error", log: `auth failed: ${(e as Error).message}` }));
    if (this.#closed) return false;

    if (result.kind === "error") {
      env.log.error(result.log, this.ctx);
      this.#outcome = "auth-error";
      this.#internalError();
      return false;
    }
    if (result.kind === "refused") {
      env.log.info(`client login failed: "${result.message}"`, this.ctx);
      const close = result.waitSec <= 0; // no Auth-Wait: the refusal ends the session
      if (!close) {
        await new Promise((r) => setTimeout(r, result.waitSec * 1000));
        if (this.#closed) return false;
      }
      // A refusal may take a round trip (an error challenge, the client's
      // answer, then the refusal line), so the dialogue resumes either way;
      // with `close` the machine ends it with a close step.
      const steps = this.#machine!.authRefused({
        message: result.message,
        errorCode: result.errorCode,
        saslError: null,
        close,
      });
      this.phase = "preauth";
      this.#arm(env.server.timeoutMs, () => this.#timedOut());
      for (const step of steps) if (!(await this.#step(step))) return false;
      return !this.#closed;
    }
    this.ctx.login = loginForLog(result.user);
    this.ctx.upstream = result.backendName;
    this.#loginToBackend(creds, result.addr, result.port, result.user, result.pass);
    return false;
  }

  #internalError(): void {
    if (this.phase === "backend") this.#outcome = "backend-error";
    this.#write(this.#env.protocol.internalError);
    this.#closeClientGracefully();
  }

  // ---- backend login -------------------------------------------------------

  async #loginToBackend(creds: Credentials, addr: string, port: number, user: string, pass: string | null) {
    const env = this.#env;
    this.phase = "backend";
    const deadline = Date.now() + env.server.timeoutMs;
    this.#arm(env.server.timeoutMs, () => {
      this.#timer = null;
      env.log.info("upstream timed out", this.ctx);
      this.#internalError();
      this.#outcome = "timeout";
    });
    const tlsMode = backendTlsMode(env.server.proxySsl);
    const tlsOpts = env.backendTls ? env.backendTls(addr) : null;
    let backend: Conn;
    try {
      backend = await env.runtime.connect({
        kind: "tcp",
        host: addr,
        port,
        timeoutMs: deadline - Date.now(),
        ...(tlsMode === "ssl" && tlsOpts ? { tls: tlsOpts } : {}),
      });
    } catch (e) {
      if (this.#closed || this.phase !== "backend") return;
      const hint = refusedHintFor(env.auth, this.ctx.upstream ?? `${addr}:${port}`, e);
      if (hint !== null) env.log.notice(hint, this.ctx);
      env.log.error(`connect() to ${this.ctx.upstream} failed (${describeSocketError(e)})`, this.ctx);
      this.#disarm();
      this.#internalError();
      return;
    }
    if (this.#closed || this.phase !== "backend") {
      backend.destroy();
      return;
    }
    this.#backend = backend;
    if (env.server.proxyProtocol !== "off") {
      // Sent before anything else, in one write (tls_and_proxy_protocol.md §8).
      backend.write(
        env.server.proxyProtocol === "v1"
          ? proxyV1(this.#clientAddr, this.#client.local)
          : proxyV2(
            this.#clientAddr,
            this.#client.local,
            this.#client.tls,
            this.#client.tls ? ownCertFor(env.tls) : {},
          ),
      );
    }
    const login: BackendLogin = env.protocol.createBackendLogin({
      config: env.server,
      creds,
      user,
      pass,
      clientAddr: addrText(this.#clientAddr),
      clientHost: this.#clientHost ?? "[UNAVAILABLE]",
      backendTls: tlsMode,
    });
    let settled = false;
    const onSteps = (steps: BackendStep[]) => {
      for (const s of steps) {
        if (settled) return;
        if (s.kind === "send") backend.write(s.data);
        else if (s.kind === "starttls") {
          // Always the last step of its batch; the login resumes after the handshake.
          backend.startTlsClient(tlsOpts!).then(
            () => {
              if (!settled && !this.#closed) onSteps(login.tlsStarted());
            },
            (e) => {
              if (settled || this.#closed) return;
              settled = true;
              env.log.error(`upstream SSL handshake failed: ${(e as Error).message}`, this.ctx);
              this.#disarm();
              backend.destroy();
              this.#internalError();
            },
          );
          return;
        }
        else if (s.kind === "fail") {
          settled = true;
          if (s.log) env.log.log(s.log.level, s.log.message, this.ctx);
          this.#disarm();
          backend.destroy();
          this.#outcome = "backend-error";
          this.#write(s.toClient);
          this.#closeClientGracefully();
        } else {
          settled = true;
          this.#disarm();
          this.#startRelay(s.toClient);
        }
      }
    };
    backend.attach({
      data: (chunk) => onSteps(login.push(chunk)),
      drain: () => {},
      end: () => {},
      close: () => {
        if (settled) return;
        settled = true;
        // Closed by us: the session already ended (client gone, or the
        // login timed out and was answered and logged once).
        if (this.#closed || this.phase !== "backend") return;
        env.log.error("upstream prematurely closed connection", this.ctx);
        this.#disarm();
        this.#internalError();
      },
    });
  }

  #startRelay(toClient: Uint8Array): void {
    const env = this.#env;
    const backend = this.#backend!;
    this.phase = "relay";
    env.log.info("client logged in", this.ctx);
    const pending = this.#machine!.takeInput();
    this.#machine = null;
    this.#outcome = "proxied";
    this.#write(toClient);
    if (pending.length > 0) backend.write(pending);
    this.#client.resume();
    const r = relay(this.#client, backend, {
      timeoutMs: env.server.proxyTimeoutMs,
      onEnd: (reason, stats) => {
        this.#in += stats.up;
        this.#out += stats.down;
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
    this.#relayStop?.();
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
    this.#env.onDone(this);
  }

  /** Fast stop, or the shutdown timeout: ends the session now. */
  abort(): void {
    this.#outcome = "shutdown";
    this.#finish();
  }
}
