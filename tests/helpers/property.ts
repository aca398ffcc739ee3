// Shared pieces of the property tests (tests/unit/property_*_test.ts):
// fast-check arbitraries for bytes and for ways of splitting them into
// chunks, a bounded run count, full ServerConfig objects for the protocol
// machines, and a driver that also reports how many bytes a machine still
// holds at the end of a run.

import fc from "fast-check";
import assert from "node:assert/strict";
import process from "node:process";
import type { ServerConfig } from "../../lib/config/types.ts";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { BackendLogin, PreauthMachine } from "../../lib/core/machine.ts";
import { type AuthFn, drive, renderBackendStep, type Run } from "./drive_machine.ts";

/**
 * Runs per property: bounded so that every property file takes seconds.
 * MAILGATE_FC_RUNS raises it for a longer hunt (e.g. 5000).
 */
export const RUNS = Number(process.env.MAILGATE_FC_RUNS ?? "") || 150;

/** fc.assert with the bounded run count (and a fixed seed when MAILGATE_FC_SEED is set). */
export function check<T>(prop: fc.IProperty<T>, runs = RUNS): void {
  const seed = process.env.MAILGATE_FC_SEED;
  fc.assert(prop, { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) });
}

/** Arbitrary bytes as a binary string (one char per byte). */
export function binary(maxLength: number, minLength = 0): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength, maxLength }).map((b) => bytesToBinary(b));
}

/** Pieces biased towards what parsers care about: line ends, spaces, quotes, braces, NUL, high bytes. */
const PIECE = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(
    " ", " ", "\0", "\"", "\\", "{", "}", "+", "*", "=", ":", "-", ".", "@", "<", ">",
    "{0}", "{5}\r\n", "{4294967296}", "{99999999999999999999}", "{3+}\r\n", "{2}\r\nab",
    "\xff", "\x80", "\t", "\r", "\n", "dGVzdAB0ZXN0AHNlY3JldA==", "====", "AGEAYg", "*",
    "PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "test@example.com", "secret",
  ) },
  { weight: 1, arbitrary: binary(12) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 12 }) },
);

/** Command words of all three protocols, as a line may start. */
const LINE_START = fc.constantFrom(
  "", "a1 ", "a LOGIN ", "b AUTHENTICATE ", "c CAPABILITY", "d STARTTLS", "e NOOP", "f LOGOUT",
  "x ", "* ", " ", "USER ", "PASS ", "APOP ", "AUTH ", "CAPA", "STLS", "QUIT", "NOOP",
  "EHLO ", "HELO ", "MAIL FROM:", "RCPT TO:", "RSET", "STARTTLS", "VRFY ", "DATA",
);

const LINE_END = fc.constantFrom("\r\n", "\r\n", "\r\n", "\n", "\r", "", "\r\r\n", "\n\r");

/**
 * Hostile input for line protocols: up to maxLines lines, each a protocol
 * word or tag, then pieces biased towards what parsers care about, then a
 * (sometimes broken) line end.
 */
export function hostileText(maxLines: number): fc.Arbitrary<string> {
  const line = fc.tuple(LINE_START, fc.array(PIECE, { maxLength: 6 }), LINE_END).map(([s, p, e]) =>
    s + p.join("") + e
  );
  return fc.array(line, { maxLength: maxLines }).map((a) => a.join(""));
}

/** Cut points (fractions of the length) for splitting a transcript. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
  maxLength: 12,
});

/** Splits s at the given fractional cut points (empty chunks dropped). */
export function splitAt(s: string, fractions: number[]): string[] {
  const at = [...new Set(fractions.map((f) => Math.floor(f * s.length)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of at) {
    if (p > prev && p < s.length) {
      out.push(s.slice(prev, p));
      prev = p;
    }
  }
  if (prev < s.length || out.length === 0) out.push(s.slice(prev));
  return out;
}

/** Every byte on its own. */
export function bytewise(s: string): string[] {
  return s.length === 0 ? [""] : s.split("");
}

const COMMON: Partial<ServerConfig> = {
  serverName: "mail.example.com",
  maxErrors: 5,
  proxyBuffer: 4096,
  proxyPassErrorMessage: false,
  starttls: "off",
  xclient: true,
  proxySmtpAuth: false,
};

export function imapConfig(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    ...COMMON,
    protocol: "imap",
    imapAuth: ["plain", "login", "cram-md5", "external"],
    imapCapabilities: ["IMAP4", "IMAP4rev1", "UIDPLUS"],
    imapClientBuffer: 4096,
    ...o,
  } as ServerConfig;
}

export function pop3Config(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    ...COMMON,
    protocol: "pop3",
    pop3Auth: ["plain", "apop", "cram-md5", "external"],
    pop3Capabilities: ["TOP", "USER", "UIDL"],
    ...o,
  } as ServerConfig;
}

export function smtpConfig(o: Partial<ServerConfig> = {}): ServerConfig {
  return {
    ...COMMON,
    protocol: "smtp",
    smtpAuth: ["plain", "login", "cram-md5", "external"],
    smtpCapabilities: ["SIZE 10485760", "8BITMIME"],
    smtpClientBuffer: 4096,
    smtpGreetingDelayMs: 0,
    ...o,
  } as ServerConfig;
}

export const SALT = "<1234567.1700000000@mail.example.com>";

export interface SettledRun extends Run {
  /** Bytes the machine still held at the end (0 after a close or hand-over). */
  held: number;
}

/**
 * drive() (tests/helpers/drive_machine.ts) that also measures what the
 * machine still holds when it ran out of input: unless it closed or handed
 * over, takeInput() is the unconsumed remainder.
 */
export function driveHeld(m: PreauthMachine, chunks: string[], auth?: AuthFn): SettledRun {
  const run = drive(m, chunks, auth);
  const held = run.closed || run.rest !== null ? 0 : m.takeInput().length;
  return { ...run, held };
}

/** Feeds a backend-login machine chunk by chunk; steps rendered as text, stops after done/fail. */
export function feedBackend(m: BackendLogin, chunks: string[]): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    for (const s of m.push(binaryToBytes(c))) {
      out.push(renderBackendStep(s));
      if (s.kind === "starttls") {
        for (const t of m.tlsStarted()) out.push(renderBackendStep(t));
      }
    }
    if (out.some((e) => e.startsWith("DONE") || e.startsWith("FAIL"))) break;
  }
  return out;
}

/** Asserts that a machine run only produced well-formed steps. */
export function assertSaneRun(run: Run): void {
  for (const e of run.events) {
    assert.ok(
      /^(S: |LOG (info|error|warn|notice|debug) |CLOSE$|STARTTLS$|AUTH )/s.test(e),
      `unexpected event ${JSON.stringify(e)}`,
    );
  }
}

/** Log lines made from client input must stay one printable line (no log injection). */
export function assertLogsPrintable(run: Run): void {
  for (const e of run.events) {
    if (e.startsWith("LOG ")) assert.ok(!/[\x00-\x1f\x7f]/.test(e), `control byte in ${JSON.stringify(e)}`);
  }
}

/**
 * The properties every pre-auth machine must have on arbitrary input:
 * never throws, only well-formed steps, printable log lines, the same
 * transcript whole and split, and less than `cap` bytes held once it waits
 * for more input.
 */
export function arbitraryInputProperty(
  make: () => PreauthMachine,
  cap: number,
  input: fc.Arbitrary<string>,
): fc.IPropertyWithHooks<[string, number[]]> {
  return fc.property(input, cuts, (text, at) => {
    const whole = driveHeld(make(), [text]);
    const split = driveHeld(make(), splitAt(text, at));
    assertSaneRun(whole);
    assertLogsPrintable(whole);
    assert.deepEqual(split.events, whole.events);
    assert.equal(split.closed, whole.closed);
    assert.ok(whole.held < cap, `held ${whole.held}`);
    assert.ok(split.held < cap, `held ${split.held}`);
  });
}
