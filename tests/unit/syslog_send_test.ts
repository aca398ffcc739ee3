// sendSyslog end to end: the UDP socket (node:dgram, loaded on first use
// rather than at start-up) sends one datagram per line to the configured
// server, with the RFC 3164 header. Loopback only; the receiver is closed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { sendSyslog } from "../../lib/log/syslog.ts";
import { loadRuntime } from "../../lib/runtime/select.ts";

const runtime = await loadRuntime();

describe("syslog sending", () => {
  it("one datagram per line, header then the line without its date", async () => {
    const rx = createSocket("udp4");
    await new Promise<void>((r) => rx.bind(0, "127.0.0.1", () => r()));
    const port = rx.address().port;
    const got: string[] = [];
    rx.on("message", (m) => got.push(new TextDecoder().decode(m)));
    try {
      const line = "2026/11/22 04:00:00 [error] 1#0: *1 test line";
      sendSyslog(runtime, `syslog:server=127.0.0.1:${port},facility=local6,tag=mail,nohostname`, 3, line);
      sendSyslog(runtime, `syslog:server=127.0.0.1:${port},facility=local6,tag=mail,nohostname`, 3, line);
      for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got.length, 2);
      // local6 = 22, error = 3: <179>
      assert.match(got[0], /^<179>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mail: \[error\] 1#0: \*1 test line$/);
    } finally {
      rx.close();
    }
  });
});
