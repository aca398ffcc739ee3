// A client-side mail dialog as data: a list of steps, each an optional line
// to send and the reply to wait for (a line prefix, or the server closing
// the connection). Used by the load generator for IMAP, POP3 and SMTP
// logins through the proxy; replies are matched by complete lines, so the
// outcome does not depend on how the proxy chunks its writes.

import type { Socket } from "node:net";
import type { Buffer } from "node:buffer";
import {
  IMAP_LOGIN,
  IMAP_LOGOUT,
  POP3_PASS,
  POP3_QUIT,
  POP3_USER,
  SMTP_AUTH,
  SMTP_EHLO,
  SMTP_QUIT,
  TAG,
} from "./wire.ts";

export type Proto = "imap" | "pop3" | "smtp";

/** Wait for the server to close (EOF or close), not for a line. */
export const CLOSE = Symbol("close");

export interface Step {
  send?: string;
  expect: string | typeof CLOSE;
}

/** Up to and including the tagged/final OK of the login. */
export const LOGIN_STEPS: Record<Proto, Step[]> = {
  imap: [{ expect: "* OK" }, { send: IMAP_LOGIN, expect: `${TAG} OK` }],
  pop3: [{ expect: "+OK" }, { send: POP3_USER, expect: "+OK" }, { send: POP3_PASS, expect: "+OK" }],
  smtp: [{ expect: "220 " }, { send: SMTP_EHLO, expect: "250 " }, {
    send: SMTP_AUTH,
    expect: "235 ",
  }],
};

export const LOGOUT_STEP: Record<Proto, Step> = {
  imap: { send: IMAP_LOGOUT, expect: CLOSE },
  pop3: { send: POP3_QUIT, expect: CLOSE },
  smtp: { send: SMTP_QUIT, expect: CLOSE },
};

/** A reply that means the dialog failed (tagged NO/BAD, -ERR, 4xx/5xx). */
const FAILURE = /^(?:[^* ]+ (?:NO|BAD)\b|-ERR|[45]\d\d[ -])/;
/** A reply line longer than this is a failure (the proxies' lines are short). */
const MAX_LINE = 16 * 1024;

/**
 * Runs `steps` on `sock` (the first step's send, if any, goes out at once;
 * greeting steps have none). Calls done(null) when the last step is met,
 * done(error text) on a failure reply, an early close or a socket error.
 * The caller owns timeouts and destroying the socket.
 */
export function runDialog(
  sock: Socket,
  steps: readonly Step[],
  done: (err: string | null) => void,
): void {
  let i = 0;
  let buf = "";
  let finished = false;
  const finish = (err: string | null) => {
    if (finished) return;
    finished = true;
    sock.removeListener("data", onData);
    done(err);
  };
  const enter = () => {
    if (i >= steps.length) return finish(null);
    const s = steps[i].send;
    if (s !== undefined) sock.write(s);
  };
  const onData = (d: Buffer) => {
    if (steps[i]?.expect === CLOSE) return;
    buf += d.toString("latin1");
    // One reply line per round; bounded by the lines held.
    for (let guard = 0; guard < 1000 && !finished; guard++) {
      const eol = buf.indexOf("\r\n");
      if (eol < 0) {
        if (buf.length > MAX_LINE) finish("reply line too long");
        return;
      }
      const line = buf.slice(0, eol);
      buf = buf.slice(eol + 2);
      const want = steps[i].expect;
      if (typeof want === "string" && line.startsWith(want)) {
        i++;
        enter();
        if (steps[i]?.expect === CLOSE) return;
      } else if (FAILURE.test(line)) return finish(line);
    }
  };
  sock.on("data", onData);
  const onEnd = () =>
    finish(steps[i]?.expect === CLOSE && i === steps.length - 1 ? null : "closed early");
  sock.once("end", onEnd);
  sock.once("close", onEnd);
  sock.once("error", (e: Error) => finish(String(e.message ?? e)));
  enter();
}
