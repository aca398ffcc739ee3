// The benchmark's auth_http service: raw node:net. An HTTP/1.0 request (what
// nginx sends) is answered with HTTP/1.0 and the connection closed; an
// HTTP/1.1 request (mailgate with auth_http_keepalive) is answered with
// HTTP/1.1 and Content-Length: 0 and the connection kept for more. Every
// login is accepted and routed by Auth-Protocol to the lean backend. Runs in
// its own process (bun tools/bench/auth_server.ts '{"imap":p,...}') so its
// CPU is not charged to the proxy.
//
// Prints {"port":N} when listening; exits when stdin closes.

import { createServer, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { announce, helperOptions, listenParent } from "./child_io.ts";

interface Options {
  imap: number;
  pop3: number;
  smtp: number;
}

const opts = helperOptions<Options>();
/** A request head larger than this is answered with an error (the proxies send ~300 bytes). */
const MAX_REQUEST = 16 * 1024;
const PROTOCOL_HEADER = "\r\nauth-protocol: ";

/** The answer per Auth-Protocol; HTTP/1.1 ones frame themselves (Content-Length: 0) to keep the connection. */
function answers(http11: boolean): Record<string, Buffer> {
  const answer = (port: number) =>
    Buffer.from(
      `HTTP/1.${http11 ? 1 : 0} 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: ${port}\r\n` +
        `${http11 ? "Content-Length: 0\r\n" : ""}\r\n`,
      "latin1",
    );
  return { imap: answer(opts.imap), pop3: answer(opts.pop3), smtp: answer(opts.smtp) };
}
const ANSWERS = answers(false);
const ANSWERS11 = answers(true);
const BAD = Buffer.from("HTTP/1.0 200 OK\r\nAuth-Status: unknown protocol\r\n\r\n", "latin1");

let requests = 0;

function onConn(sock: Socket) {
  sock.on("error", () => {});
  let head = "";
  let closed = false;
  sock.on("data", (d: Buffer) => {
    if (closed) return;
    head += d.toString("latin1");
    for (let end = head.indexOf("\r\n\r\n"); end >= 0 && !closed; end = head.indexOf("\r\n\r\n")) {
      requests++;
      const lower = head.slice(0, end + 2).toLowerCase();
      const keep = lower.slice(0, lower.indexOf("\r\n")).endsWith(" http/1.1");
      head = head.slice(end + 4);
      const at = lower.indexOf(PROTOCOL_HEADER);
      const proto = at < 0
        ? ""
        : lower.slice(at + PROTOCOL_HEADER.length, lower.indexOf("\r\n", at + 2));
      const reply = (keep ? ANSWERS11 : ANSWERS)[proto];
      if (keep && reply) {
        sock.write(reply);
      } else {
        closed = true;
        sock.end(reply ?? BAD);
      }
    }
    if (!closed && head.length > MAX_REQUEST) {
      closed = true;
      sock.end(BAD);
    }
  });
}

const server = createServer(onConn);
server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
  announce({ port: (server.address() as { port: number }).port });
});
listenParent((line) => {
  if (line === "stats") announce({ requests });
});
