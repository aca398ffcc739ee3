// The soak backend: IMAP, POP3 and SMTP listeners that serve payloads by
// seed and check uploads, in their own process (its own fd budget):
//   deno run -A --unstable-net tools/soak/backend.ts   (or bun tools/soak/backend.ts)
// prints its ports as one JSON line, serves until SIGTERM/SIGINT.

import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import process from "node:process";
import { Payload, PayloadCheck } from "./payload.ts";
import type { Proto } from "./types.ts";
import { Reader, send, sendPayload } from "./wire.ts";

/** The backend waits this long for mailgate's next line (the client may be slow under load). */
const BACKEND_IDLE_MS = 300_000;

/** IMAP, POP3 and SMTP listeners that serve and check payloads by seed. */
export class SoakBackend {
  readonly servers: Record<Proto, Server>;
  readonly ports = { imap: 0, pop3: 0, smtp: 0 };
  readonly sockets = new Set<Socket>();
  /** Uploads that did not match (also reported to the client). */
  bad = 0;

  constructor() {
    this.servers = {
      imap: createServer((s) => this.#run(s, (r) => this.#imap(s, r))),
      pop3: createServer((s) => this.#run(s, (r) => this.#pop3(s, r))),
      smtp: createServer((s) => this.#run(s, (r) => this.#smtp(s, r))),
    };
  }

  async start(): Promise<this> {
    for (const p of ["imap", "pop3", "smtp"] as Proto[]) {
      await new Promise<void>((r) => this.servers[p].listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => r()));
      this.ports[p] = (this.servers[p].address() as { port: number }).port;
    }
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(Object.values(this.servers).map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  }

  #run(sock: Socket, f: (r: Reader) => Promise<void>): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    const r = new Reader(sock);
    sock.on("close", () => this.sockets.delete(sock));
    f(r).catch(() => {}).finally(() => sock.destroy());
  }

  async #upload(r: Reader, p: Payload): Promise<boolean> {
    const check = new PayloadCheck(p);
    await r.bytes(p.length, (b) => check.push(b));
    if (!check.complete) this.bad++;
    return check.complete;
  }

  async #imap(s: Socket, r: Reader): Promise<void> {
    await send(s, "* OK soak IMAP ready\r\n");
    // mailgate's login: <tag> LOGIN {u} / <user> {p} / <pass>
    const m = /^(\S+) LOGIN \{(\d+)\}$/.exec(await r.line("command", BACKEND_IDLE_MS));
    if (!m) return;
    await send(s, "+ go\r\n");
    await r.bytes(Number(m[2]), () => {});
    const pm = /^ \{(\d+)\}$/.exec(await r.line("command", BACKEND_IDLE_MS));
    if (!pm) return;
    await send(s, "+ go\r\n");
    await r.bytes(Number(pm[1]), () => {});
    await r.line("command", BACKEND_IDLE_MS);
    await send(s, `${m[1]} OK soak login\r\n`);
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      let c: RegExpExecArray | null;
      if ((c = /^(\S+) BLOB (\d+) (\d+)$/.exec(line))) {
        const p = new Payload(Number(c[3]), Number(c[2]));
        await send(s, `* BLOB {${p.length}}\r\n`);
        await sendPayload(s, p);
        await send(s, `\r\n${c[1]} OK blob\r\n`);
      } else if ((c = /^(\S+) UPLOAD (\d+) \{(\d+)\}$/.exec(line))) {
        await send(s, "+ go\r\n");
        const good = await this.#upload(r, new Payload(Number(c[2]), Number(c[3])));
        await r.line("command", BACKEND_IDLE_MS); // the CRLF that ends the command
        await send(s, `${c[1]} OK ${good ? "good" : "bad"}\r\n`);
      } else if ((c = /^(\S+) LOGOUT$/.exec(line))) {
        await send(s, `* BYE\r\n${c[1]} OK bye\r\n`);
        return void s.end();
      } else await send(s, "* BAD soak\r\n");
    }
  }

  async #pop3(s: Socket, r: Reader): Promise<void> {
    await send(s, "+OK soak POP3 ready\r\n");
    if (!/^USER /.test(await r.line("command", BACKEND_IDLE_MS))) return;
    await send(s, "+OK\r\n");
    if (!/^PASS /.test(await r.line("command", BACKEND_IDLE_MS))) return;
    await send(s, "+OK soak login\r\n");
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      let c: RegExpExecArray | null;
      if ((c = /^BLOB (\d+) (\d+)$/.exec(line))) {
        const p = new Payload(Number(c[2]), Number(c[1]));
        await send(s, `+OK ${p.length}\r\n`);
        await sendPayload(s, p);
        await send(s, "\r\n.\r\n");
      } else if ((c = /^UPLOAD (\d+) (\d+)$/.exec(line))) {
        const good = await this.#upload(r, new Payload(Number(c[2]), Number(c[1])));
        await send(s, `+OK ${good ? "good" : "bad"}\r\n`);
      } else if (line === "QUIT") {
        await send(s, "+OK bye\r\n");
        return void s.end();
      } else await send(s, "-ERR soak\r\n");
    }
  }

  async #smtp(s: Socket, r: Reader): Promise<void> {
    await send(s, "220 soak ESMTP\r\n");
    let payload: Payload | null = null;
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      const cmd = line.slice(0, 4).toUpperCase();
      let c: RegExpExecArray | null;
      if (cmd === "EHLO") await send(s, "250-soak\r\n250 8BITMIME\r\n");
      else if ((c = /^MAIL FROM:<s(\d+)\.(\d+)@soak>$/.exec(line))) {
        payload = new Payload(Number(c[1]), Number(c[2]));
        await send(s, "250 2.1.0 ok\r\n");
      } else if (cmd === "RCPT") await send(s, "250 2.1.5 ok\r\n");
      else if (cmd === "DATA" && payload) {
        await send(s, "354 go\r\n");
        const check = new PayloadCheck(payload);
        for (let i = 0; i < payload.length + 2; i++) {
          const l = await r.line("DATA line", BACKEND_IDLE_MS);
          if (l === ".") break;
          check.push(Buffer.from(l, "hex"));
        }
        if (!check.complete) this.bad++;
        await send(s, check.complete ? `250 2.0.0 good ${check.received}\r\n` : `554 5.0.0 bad ${check.received}\r\n`);
        payload = null;
      } else if (cmd === "QUIT") {
        await send(s, "221 2.0.0 bye\r\n");
        return void s.end();
      } else await send(s, "502 5.5.2 soak\r\n");
    }
  }
}

/** The backend in its own process (this file run as a program); resolves with its ports. */
export async function spawnBackend(): Promise<{ ports: Record<Proto, number>; proc: ChildProcess; stop(): Promise<void> }> {
  const self = new URL(import.meta.url).pathname;
  const isBun = typeof process.versions.bun === "string";
  const args = isBun ? [self] : ["run", "-A", "--unstable-net", self];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<Record<Proto, number>>((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error("backend did not start")), 20_000);
    proc.stdout!.on("data", (d) => {
      out += d;
      const i = out.indexOf("\n");
      if (i >= 0) {
        clearTimeout(t);
        resolve(JSON.parse(out.slice(0, i)));
      }
    });
    proc.once("exit", (code) => reject(new Error(`backend exited (${code})`)));
  });
  return {
    ports,
    proc,
    async stop() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(t);
    },
  };
}

if (import.meta.main) {
  const b = await new SoakBackend().start();
  console.log(JSON.stringify(b.ports));
  await new Promise<void>((resolve) => {
    process.on("SIGTERM", () => resolve());
    process.on("SIGINT", () => resolve());
  });
  await b.stop();
  process.exit(0);
}
