// The contract for a protocol's work before its greeting (SMTP: the client
// host lookup and smtp_greeting_delay, smtp.md §2-3). The protocol decides
// what to wait for and what a client that talks too early gets; the session
// driver (lib/proxy/session.ts) supplies the waiting itself, the client's
// bytes and the log, so the protocol code touches no socket or timer.

import type { LogLevel, ServerConfig } from "../config/types.ts";
import type { SockAddr } from "../runtime/types.ts";
import type { ClientHostResult } from "../resolver/client_host.ts";

/**
 * While waiting, what the driver does with client bytes:
 * "refuse" - the first bytes end the wait (`talked`);
 * "hold" - they are kept for the dialogue (reading pauses after one chunk)
 * and the wait goes on.
 */
export type EarlyInput = "refuse" | "hold";

export type Waited<T> =
  | { kind: "done"; value: T }
  /** The client talked during a "refuse" wait: its first bytes. */
  | { kind: "talked"; data: Uint8Array }
  /** The session ended meanwhile (client gone, shutdown): stop. */
  | { kind: "over" };

export interface PreGreetingIo {
  readonly config: ServerConfig;
  /** The client's address: the TCP peer, or a trusted PROXY header's source. */
  readonly clientAddr: SockAddr;
  /** Client host lookups (`resolver`); null when off. */
  readonly lookupClientHost: ((ip: string) => Promise<ClientHostResult>) | null;
  /** Client bytes received so far without a greeting (with a PROXY header, or held). */
  early(): Uint8Array | null;
  /**
   * Waits for `work` to settle, watching the client as `input` says.
   * `timeout` does not run meanwhile (a lookup is bounded by its own
   * timeout, resolver_timeout).
   */
  wait<T>(work: Promise<T>, input: EarlyInput): Promise<Waited<T>>;
  /** Waits `ms` milliseconds (in place of `timeout`), watching the client. */
  sleep(ms: number, input: EarlyInput): Promise<Waited<void>>;
  log(level: LogLevel, message: string): void;
}

export type PreGreetingResult =
  /** Greet now. `clientHost`: Client-Host / XCLIENT NAME= (null: the protocol has none). */
  | { kind: "greet"; clientHost: string | null }
  /** Refuse the client: log `log` (info), send `reply`, close. `data`: the bytes it sent. */
  | { kind: "reject"; reply: Uint8Array; log: string; data: Uint8Array }
  | { kind: "over" };

/** A protocol's pre-greeting step; protocols without one greet at once. */
export type BeforeGreeting = (io: PreGreetingIo) => Promise<PreGreetingResult>;
