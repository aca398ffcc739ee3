// The client side of a soak session, per protocol: log in as a user naming
// the session, `transfers` downloads and uploads of fresh payloads, log out;
// and the window that bounds connection attempts in flight.

import { connect, type Socket } from "node:net";
import { Payload, PayloadCheck } from "./payload.ts";
import type { ProtoStats, SoakOptions } from "./types.ts";
import { Reader, send, sendHexPayload, sendPayload, STEP_TIMEOUT_MS, Timeout } from "./wire.ts";

export function emptyStats(): ProtoStats {
  return { sessions: 0, failedSessions: 0, transfers: 0, bytesDown: 0, bytesUp: 0, lost: 0, truncated: 0, crossed: 0, errors: 0 };
}

export class Mismatch extends Error {}
class BadReply extends Error {}

function expect(line: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(line);
  if (!m) throw new BadReply(`${what}: ${JSON.stringify(line.slice(0, 120))}`);
  return m;
}

/** A seed unique to this run, session and transfer. */
let nextSeed = (Date.now() & 0xffff) << 12;

function payloadFor(maxPayload: number): Payload {
  nextSeed = (nextSeed + 1) >>> 0;
  return new Payload(nextSeed, 1 + Math.floor(Math.random() * maxPayload));
}

async function download(r: Reader, p: Payload, st: ProtoStats): Promise<void> {
  const check = new PayloadCheck(p);
  await r.bytes(p.length, (b) => check.push(b));
  if (!check.complete) throw new Mismatch(`payload ${p.seed} differs at byte ${check.received}`);
  st.bytesDown += p.length;
}

async function imapSession(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^\* OK IMAP4 ready$/, "greeting");
  await send(sock, `a LOGIN soak-${id} pw\r\n`);
  expect(await r.line("login"), /^a OK soak login$/, "login");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    if (t % 2 === 0) {
      await send(sock, `d${t} BLOB ${p.length} ${p.seed}\r\n`);
      expect(await r.line("BLOB"), new RegExp(`^\\* BLOB \\{${p.length}\\}$`), "BLOB");
      await download(r, p, st);
      expect(await r.line("end of literal"), /^$/, "end of literal");
      expect(await r.line("BLOB done"), new RegExp(`^d${t} OK blob$`), "BLOB done");
    } else {
      await send(sock, `u${t} UPLOAD ${p.seed} {${p.length}}\r\n`);
      expect(await r.line("continuation"), /^\+ go$/, "continuation");
      await sendPayload(sock, p);
      await send(sock, "\r\n");
      const m = expect(await r.line("UPLOAD"), new RegExp(`^u${t} OK (good|bad)$`), "UPLOAD");
      if (m[1] !== "good") throw new Mismatch(`upload ${p.seed} arrived changed`);
      st.bytesUp += p.length;
    }
    st.transfers++;
  }
  await send(sock, "z LOGOUT\r\n");
  expect(await r.line("BYE"), /^\* BYE$/, "BYE");
  expect(await r.line("LOGOUT"), /^z OK bye$/, "LOGOUT");
}

async function pop3Session(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^\+OK POP3 ready$/, "greeting");
  await send(sock, `USER soak-${id}\r\nPASS pw\r\n`);
  expect(await r.line("USER"), /^\+OK$/, "USER");
  expect(await r.line("PASS"), /^\+OK soak login$/, "PASS");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    if (t % 2 === 0) {
      await send(sock, `BLOB ${p.length} ${p.seed}\r\n`);
      expect(await r.line("BLOB"), new RegExp(`^\\+OK ${p.length}$`), "BLOB");
      await download(r, p, st);
      expect(await r.line("end of data"), /^$/, "end of data");
      expect(await r.line("end of list"), /^\.$/, "end of list");
    } else {
      await send(sock, `UPLOAD ${p.length} ${p.seed}\r\n`);
      await sendPayload(sock, p);
      const m = expect(await r.line("UPLOAD"), /^\+OK (good|bad)$/, "UPLOAD");
      if (m[1] !== "good") throw new Mismatch(`upload ${p.seed} arrived changed`);
      st.bytesUp += p.length;
    }
    st.transfers++;
  }
  await send(sock, "QUIT\r\n");
  expect(await r.line("QUIT"), /^\+OK bye$/, "QUIT");
}

async function smtpSession(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^220 soak\.test ESMTP ready$/, "greeting");
  await send(sock, "EHLO soak.client\r\n");
  for (let i = 0; i < 20; i++) if (/^250 /.test(await r.line())) break;
  await send(sock, `AUTH PLAIN ${Buffer.from(`\0soak-${id}\0pw`, "latin1").toString("base64")}\r\n`);
  expect(await r.line("AUTH"), /^235 2\.0\.0 OK$/, "AUTH");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    await send(sock, `MAIL FROM:<s${p.seed}.${p.length}@soak>\r\nRCPT TO:<r@soak>\r\nDATA\r\n`);
    expect(await r.line("MAIL"), /^250 /, "MAIL");
    expect(await r.line("RCPT"), /^250 /, "RCPT");
    expect(await r.line("DATA"), /^354 /, "DATA");
    await sendHexPayload(sock, p);
    const m = expect(await r.line("end of DATA"), /^(250 2\.0\.0 good|554 5\.0\.0 bad) (\d+)$/, "end of DATA");
    if (!m[1].startsWith("250")) throw new Mismatch(`message ${p.seed} arrived changed`);
    st.bytesUp += p.length;
    st.transfers++;
  }
  await send(sock, "QUIT\r\n");
  expect(await r.line("QUIT"), /^221 /, "QUIT");
}

export const SESSIONS = { imap: imapSession, pop3: pop3Session, smtp: smtpSession };

/** Admits at most `n` connection attempts at a time. */
export class Window {
  #free: number;
  #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((r) => this.#queue.push(r));
  }
  give(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}

export function openSocket(port: number, win: Window): Promise<Socket> {
  return win.take().then(() =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1" });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Timeout("connect timed out"));
      }, STEP_TIMEOUT_MS);
      s.once("connect", () => {
        clearTimeout(t);
        s.setNoDelay(true);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    }).finally(() => win.give())
  );
}
