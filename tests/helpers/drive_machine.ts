// Drives a pre-auth machine (lib/core/machine.ts) the way the session
// driver does, recording every step as text, so protocol tests can compare
// whole transcripts. Shared by the protocol unit tests.

import assert from "node:assert/strict";
import { binaryToBytes, bytesToBinary } from "../../lib/core/bytes.ts";
import type { BackendStep, Credentials, PreauthMachine } from "../../lib/core/machine.ts";

/** Bound on next() calls per run (every loop in a test is bounded). */
export const MAX_NEXT = 100_000;

/** The auth service: a refusal message, or null to accept (hand-over). */
export type AuthFn = (c: Credentials) => string | null;

export interface Run {
  /** Every step, rendered: "S: <bytes>", "CLOSE", "STARTTLS", "AUTH ...", "LOG <level> <msg>". */
  events: string[];
  /** All bytes sent to the client. */
  out: string;
  /** After a hand-over: takeInput() plus the chunks not yet pushed. */
  rest: string | null;
  closed: boolean;
}

/** `AUTH <method> user=".." pass=".." salt=..` plus ` tag=..` when the credentials carry one. */
export function renderCreds(c: Credentials): string {
  return `AUTH ${c.method} user=${JSON.stringify(c.user)} pass=${
    JSON.stringify(c.pass)
  } salt=${c.salt}` +
    (c.tag === undefined ? "" : ` tag=${c.tag}`);
}

/**
 * Pushes one chunk at a time and calls next() until it returns [] (or the
 * machine closes / hands over), then pushes the next chunk. A starttls step
 * is completed at once; an auth step is answered at once by `auth`.
 */
export function drive(m: PreauthMachine, chunks: string[], auth: AuthFn = () => "denied"): Run {
  const run: Run = { events: [], out: "", rest: null, closed: false };
  let calls = 0;
  for (let i = 0; i < chunks.length; i++) {
    m.push(binaryToBytes(chunks[i]));
    for (;;) {
      assert.ok(++calls < MAX_NEXT, "machine did not settle");
      const steps = m.next();
      if (steps.length === 0) break;
      for (const s of steps) {
        switch (s.kind) {
          case "send": {
            const text = bytesToBinary(s.data);
            run.events.push("S: " + text);
            run.out += text;
            break;
          }
          case "log":
            run.events.push(`LOG ${s.level} ${s.message}`);
            break;
          case "close":
            run.events.push("CLOSE");
            run.closed = true;
            return run;
          case "starttls":
            run.events.push("STARTTLS");
            m.tlsStarted();
            break;
          case "auth": {
            run.events.push(renderCreds(s.creds));
            const refusal = auth(s.creds);
            if (refusal === null) {
              run.rest = bytesToBinary(m.takeInput()) + chunks.slice(i + 1).join("");
              return run;
            }
            const line = bytesToBinary(refuse(m, refusal));
            run.events.push("S: " + line);
            run.out += line;
            break;
          }
        }
      }
    }
  }
  return run;
}

/**
 * authRefused() after Auth-Wait with a one-line refusal (no error
 * challenge): the line it sends. Throws if the machine returns anything else.
 */
export function refuse(
  m: PreauthMachine,
  message: string,
  errorCode: string | null = null,
): Uint8Array {
  const steps = m.authRefused({ message, errorCode, saslError: null, close: false });
  if (steps.length !== 1 || steps[0].kind !== "send") {
    throw new Error("not a one-line refusal: " + JSON.stringify(steps));
  }
  return steps[0].data;
}

/** drive() with one chunk per argument, returning only the events. */
export function events(m: PreauthMachine, ...chunks: string[]): string[] {
  return drive(m, chunks).events;
}

/**
 * A backend-login step as text: "<prefix><to backend>", "DONE <to client>",
 * "FAIL <to client>| <level> <log>", "STARTTLS".
 */
export function renderBackendStep(s: BackendStep, prefix = "B: "): string {
  switch (s.kind) {
    case "send":
      return prefix + bytesToBinary(s.data);
    case "done":
      return "DONE " + bytesToBinary(s.toClient);
    case "fail":
      return `FAIL ${bytesToBinary(s.toClient)}| ${
        s.log ? `${s.log.level} ${s.log.message}` : "-"
      }`;
    case "starttls":
      return "STARTTLS";
  }
}
