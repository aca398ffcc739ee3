// What SMTP does before its greeting (smtp.md §2, §3), in nginx's order:
// the client's host name (no resolver: "[UNAVAILABLE]"; a unix-socket
// client: "[TEMPUNAVAIL]"; else a lookup bounded by resolver_timeout), then
// smtp_greeting_delay. A client that talks before a delayed greeting - also
// during the lookup when a delay is configured - is refused with 503 and
// closed; without a delay, commands sent during the lookup are kept and
// answered after the greeting.

import type { PreGreetingIo, PreGreetingResult } from "../core/pre_greeting.ts";
import { HOST_TEMPUNAVAIL, HOST_UNAVAILABLE } from "../resolver/client_host.ts";
import { logRejectedBeforeGreeting, SMTP_PIPELINING_BEFORE_GREETING } from "./replies.ts";

export async function smtpBeforeGreeting(io: PreGreetingIo): Promise<PreGreetingResult> {
  const delayMs = io.config.smtpGreetingDelayMs;
  const early = delayMs > 0 ? "refuse" : "hold";
  const addr = io.clientAddr;
  let host: string;
  if (!io.lookupClientHost) host = HOST_UNAVAILABLE;
  else if (addr.family === "unix") host = HOST_TEMPUNAVAIL;
  else {
    const r = await io.wait(io.lookupClientHost(addr.address), early);
    if (r.kind !== "done") return r.kind === "talked" ? refuse(r.data) : r;
    if (r.value.log) io.log(r.value.log.level, r.value.log.message);
    host = r.value.host;
  }
  if (delayMs <= 0) return { kind: "greet", clientHost: host };
  const already = io.early();
  if (already) return refuse(already);
  const r = await io.sleep(delayMs, "refuse");
  if (r.kind !== "done") return r.kind === "talked" ? refuse(r.data) : r;
  return { kind: "greet", clientHost: host };
}

function refuse(data: Uint8Array): PreGreetingResult {
  return { kind: "reject", reply: SMTP_PIPELINING_BEFORE_GREETING, log: logRejectedBeforeGreeting(data), data };
}
