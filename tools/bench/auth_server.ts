// The benchmark's auth_http service: raw node:net, HTTP/1.0, one request
// per connection and close (what nginx's auth_http client expects). Every
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

const answer = (port: number) =>
  Buffer.from(
    `HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: ${port}\r\n\r\n`,
    "latin1",
  );
const ANSWERS: Record<string, Buffer> = {
  imap: answer(opts.imap),
  pop3: answer(opts.pop3),
  smtp: answer(opts.smtp),
};
const BAD = Buffer.from("HTTP/1.0 200 OK\r\nAuth-Status: unknown protocol\r\n\r\n", "latin1");

let requests = 0;

function onConn(sock: Socket) {
  sock.on("error", () => {});
  let head = "";
  let answered = false;
  sock.on("data", (d: Buffer) => {
    if (answered) return;
    head += d.toString("latin1");
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > MAX_REQUEST) {
        answered = true;
        sock.end(BAD);
      }
      return;
    }
    answered = true;
    requests++;
    const lower = head.slice(0, end + 2).toLowerCase();
    const at = lower.indexOf(PROTOCOL_HEADER);
    const proto = at < 0
      ? ""
      : lower.slice(at + PROTOCOL_HEADER.length, lower.indexOf("\r\n", at + 2));
    sock.end(ANSWERS[proto] ?? BAD);
  });
}

const server = createServer(onConn);
server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
  announce({ port: (server.address() as { port: number }).port });
});
listenParent((line) => {
  if (line === "stats") announce({ requests });
});
