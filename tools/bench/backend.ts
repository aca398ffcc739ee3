// The benchmark's lean mail backend: IMAP, POP3 and SMTP on three loopback
// ports, in its own process (bun tools/bench/backend.ts), accepting any
// login and doing as little as possible so the proxy is what is measured.
//
//   IMAP: LOGIN (atoms or literals, as the proxies send it) -> OK;
//         `t DOWN n` -> `* DOWN {n}` CRLF n bytes CRLF `t OK down`; LOGOUT -> BYE, close
//   POP3: USER/PASS -> +OK; RETR -> +OK, RETR_BODY, "." in three writes;
//         QUIT -> +OK, close
//   SMTP: EHLO/HELO/MAIL/RCPT -> 250; DATA -> 354, swallows the message up to
//         CRLF . CRLF -> `250 2.0.0 queued <bytes>`; QUIT -> 221, close
//
// Prints {"imap":p,"pop3":p,"smtp":p} when listening; exits when stdin closes.

import { createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { announce, listenParent } from "./child_io.ts";
import { BLOCK_BYTES, DOWN_TRAILER, downHeader, RETR_BODY, RETR_END, textBlock } from "./wire.ts";

/** A command line (or login literal) longer than this closes the connection. */
const MAX_LINE = 64 * 1024;
/** Largest `DOWN n` served (bounds one answer). */
const MAX_DOWN = 16 * 1024 ** 3;
const BLOCK = textBlock();
const END_OF_DATA = Buffer.from("\r\n.\r\n", "latin1");

function common(sock: Socket) {
  sock.setNoDelay(true);
  sock.on("error", () => {});
}

/** Writes `n` bytes of BLOCK with backpressure, then `after`. */
function stream(sock: Socket, n: number, after: string) {
  let left = n;
  const pump = () => {
    while (left > 0) {
      const k = Math.min(left, BLOCK_BYTES);
      left -= k;
      if (!sock.write(k === BLOCK_BYTES ? BLOCK : BLOCK.subarray(0, k))) {
        sock.once("drain", pump);
        return;
      }
    }
    sock.write(after);
  };
  pump();
}

function imap(sock: Socket) {
  common(sock);
  sock.write("* OK bench IMAP ready\r\n");
  let buf = "";
  /** Literal bytes still to take as part of the current command. */
  let literal = 0;
  let command = "";
  const run = (cmd: string) => {
    const sp = cmd.indexOf(" ");
    const tag = cmd.slice(0, sp);
    const rest = cmd.slice(sp + 1);
    const sp2 = rest.indexOf(" ");
    const verb = (sp2 < 0 ? rest : rest.slice(0, sp2)).toUpperCase();
    if (verb === "LOGIN") sock.write(`${tag} OK LOGIN completed\r\n`);
    else if (verb === "LOGOUT") sock.end(`* BYE bench\r\n${tag} OK LOGOUT completed\r\n`);
    else if (verb === "DOWN") {
      const n = Math.min(Number(rest.slice(sp2 + 1)) || 0, MAX_DOWN);
      sock.write(downHeader(n));
      stream(sock, n, DOWN_TRAILER.replace("a OK", `${tag} OK`));
    } else if (verb === "CAPABILITY") sock.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
    else sock.write(`${tag} OK done\r\n`);
  };
  sock.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    // Each round consumes a literal or a line; bounded by the input held.
    for (let guard = 0; guard < 10_000; guard++) {
      if (literal > 0) {
        const take = Math.min(literal, buf.length);
        command += buf.slice(0, take);
        buf = buf.slice(take);
        literal -= take;
        if (literal > 0) return;
        continue;
      }
      const eol = buf.indexOf("\r\n");
      if (eol < 0) {
        if (buf.length > MAX_LINE) sock.destroy();
        return;
      }
      const line = buf.slice(0, eol);
      buf = buf.slice(eol + 2);
      const m = /\{(\d+)(\+?)\}$/.exec(line);
      if (m) {
        command += line;
        literal = Number(m[1]);
        if (literal > MAX_LINE) return void sock.destroy();
        if (m[2] === "") sock.write("+ go ahead\r\n");
        continue;
      }
      const cmd = command + line;
      command = "";
      run(cmd);
    }
  });
}

function pop3(sock: Socket) {
  common(sock);
  sock.write("+OK bench POP3 ready\r\n");
  let buf = "";
  sock.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    for (let guard = 0; guard < 10_000; guard++) {
      const eol = buf.indexOf("\r\n");
      if (eol < 0) {
        if (buf.length > MAX_LINE) sock.destroy();
        return;
      }
      const verb = buf.slice(0, Math.min(4, eol)).toUpperCase();
      buf = buf.slice(eol + 2);
      if (verb === "QUIT") return void sock.end("+OK bye\r\n");
      if (verb === "RETR") {
        // One tick apart, so that no runtime joins them into one send.
        sock.write("+OK message follows\r\n");
        setImmediate(() => {
          sock.write(RETR_BODY);
          setImmediate(() => sock.write(RETR_END));
        });
        continue;
      }
      sock.write(verb === "PASS" ? "+OK logged in\r\n" : "+OK\r\n");
    }
  });
}

function smtp(sock: Socket) {
  common(sock);
  sock.write("220 bench ESMTP\r\n");
  let buf = "";
  let inData = false;
  let dataBytes = 0;
  /** The last bytes of the message so far, to find CRLF . CRLF across chunks. */
  let tail = Buffer.alloc(0);
  const lines = () => {
    for (let guard = 0; guard < 10_000 && !inData; guard++) {
      const eol = buf.indexOf("\r\n");
      if (eol < 0) {
        if (buf.length > MAX_LINE) sock.destroy();
        return;
      }
      const verb = buf.slice(0, Math.min(4, eol)).toUpperCase();
      buf = buf.slice(eol + 2);
      if (verb === "EHLO") sock.write("250-bench\r\n250 8BITMIME\r\n");
      else if (verb === "DATA") {
        inData = true;
        dataBytes = 0;
        // The message starts right after DATA CRLF: a leading "." CRLF ends it.
        tail = Buffer.from("\r\n", "latin1");
        sock.write("354 go ahead\r\n");
        if (buf.length > 0) {
          const rest = Buffer.from(buf, "latin1");
          buf = "";
          data(rest);
        }
      } else if (verb === "QUIT") return void sock.end("221 bye\r\n");
      else sock.write("250 2.0.0 OK\r\n");
    }
  };
  const data = (d: Buffer) => {
    // Only the boundary needs a copy: tail (<= 4 bytes) + the chunk's first 4.
    const joined = Buffer.concat([tail, d.subarray(0, 4)]);
    let end = joined.indexOf(END_OF_DATA);
    let after = -1;
    if (end >= 0) after = end + END_OF_DATA.length - tail.length;
    else {
      end = d.indexOf(END_OF_DATA);
      if (end >= 0) after = end + END_OF_DATA.length;
    }
    if (after < 0) {
      dataBytes += d.length;
      tail = Buffer.from(d.subarray(Math.max(0, d.length - 4)));
      return;
    }
    dataBytes += after;
    inData = false;
    sock.write(`250 2.0.0 queued ${dataBytes}\r\n`);
    buf += d.subarray(after).toString("latin1");
    lines();
  };
  sock.on("data", (d: Buffer) => {
    if (inData) return data(d);
    buf += d.toString("latin1");
    lines();
  });
}

function listen(handler: (s: Socket) => void): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve) =>
    server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resolve(server))
  );
}

const port = (s: Server) => (s.address() as { port: number }).port;
const [i, p, s] = await Promise.all([listen(imap), listen(pop3), listen(smtp)]);
announce({ imap: port(i), pop3: port(p), smtp: port(s) });
listenParent(() => {});
