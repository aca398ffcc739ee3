// Start-up [warn] lines for what a configuration asks for but this process
// will not do, each with the FILE:LINE of its directive, so nothing in a
// configuration is ever silently ignored: listen parameters and ssl_*
// settings the running runtime's socket or TLS stack cannot apply
// (the running Runtime's `support`, runtime/capabilities.ts, says which).

import type { Config, ConfigWarning, ListenConfig } from "./types.ts";
import {
  RUNTIME_SUPPORT,
  type RuntimeName,
  type RuntimeSupport,
  type TlsSupport,
} from "../runtime/capabilities.ts";

/** A runtime as far as warnings go: the running Runtime object, or a name (tests, README table). */
export type WarnedRuntime = RuntimeName | { readonly name: RuntimeName; readonly support: RuntimeSupport };

function resolve(rt: WarnedRuntime): { name: RuntimeName; support: RuntimeSupport } {
  return typeof rt === "string" ? { name: rt, support: RUNTIME_SUPPORT[rt] } : rt;
}

/** [warn] lines for the settings in `config` that `runtime` cannot apply. */
export function runtimeWarnings(config: Config, runtime: WarnedRuntime): ConfigWarning[] {
  return dedupe([...listenWarnings(config, runtime), ...tlsWarnings(config, runtime)]);
}

/** One line per message and place (a listen with a port range or a host name is several entries). */
function dedupe(ws: ConfigWarning[]): ConfigWarning[] {
  const seen = new Set<string>();
  return ws.filter((w) => {
    const k = `${w.message}\0${w.loc?.file}\0${w.loc?.line}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const unsupported = (what: string, runtime: RuntimeName) =>
  `${what} is not supported by the ${runtime} runtime, ignored`;

/**
 * Listen parameters the runtime cannot set on its sockets. Applied ones say
 * nothing: backlog (Deno), ipv6only (Bun natively; Deno serves an IPv4
 * listen of the same port from the [::] socket and closes other IPv4
 * connections there), so_keepalive on/off and its idle time (both).
 * multipath is already reported by the loader (listen.ts).
 */
export function listenWarnings(config: Config, rt: WarnedRuntime): ConfigWarning[] {
  const { name: runtime, support } = resolve(rt);
  const caps = support.listen;
  const out: ConfigWarning[] = [];
  const warn = (message: string, l: ListenConfig) => out.push({ message, loc: l.loc });
  for (const s of config.mail?.servers ?? []) {
    for (const l of s.listens) {
      const unix = l.address.kind === "unix";
      if (l.backlog !== null) {
        if (!caps.backlog) warn(unsupported(`"backlog"`, runtime), l);
        else if (unix && !caps.backlogUnix) warn(unsupported(`"backlog" on a unix socket`, runtime), l);
      }
      if (l.rcvbuf !== null && !caps.bufferSizes) warn(unsupported(`"rcvbuf"`, runtime), l);
      if (l.sndbuf !== null && !caps.bufferSizes) warn(unsupported(`"sndbuf"`, runtime), l);
      const k = l.soKeepalive;
      if (k !== null && typeof k === "object" && !unix) {
        const dropped: string[] = [];
        if (k.idle !== null && !caps.keepaliveIdle) dropped.push("idle time");
        if (k.intvl !== null) dropped.push("interval");
        if (k.cnt !== null) dropped.push("count");
        if (dropped.length > 0) {
          const what = dropped.length === 1
            ? `${dropped[0]} is`
            : `${dropped.slice(0, -1).join(", ")} and ${dropped[dropped.length - 1]} are`;
          const rest = !caps.keepaliveIdle || k.idle === null
            ? "keep-alive is on with the system's timers"
            : caps.keepaliveIntvlCnt === "pinned"
            ? "keep-alive uses the idle time, a 1s probe interval and 10 probes"
            : "keep-alive uses the idle time and the system's probe interval and count";
          warn(`"so_keepalive" ${what} not supported by the ${runtime} runtime, ignored: ${rest}`, l);
        }
      }
    }
  }
  return out;
}

/** Why an ssl_* directive with these arguments is not applied, or null when it is. */
export function tlsDirectiveProblem(
  name: string,
  args: string[],
  runtime: RuntimeName,
  caps: TlsSupport = RUNTIME_SUPPORT[runtime].tls,
): string | null {
  const v = args[0] ?? "";
  const lower = v.toLowerCase();
  switch (name) {
    case "ssl_protocols": {
      const bad = args.filter((p) =>
        p === "SSLv2" || p === "SSLv3" || (!caps.oldProtocols && (p === "TLSv1" || p === "TLSv1.1"))
      );
      return bad.length > 0 ? unsupported(`"${bad.join(" ")}" in "ssl_protocols"`, runtime) : null;
    }
    case "ssl_ciphers":
      return caps.ciphers ? null : `${unsupported(`"ssl_ciphers"`, runtime)}: its TLS layer has a fixed set of cipher suites`;
    case "ssl_prefer_server_ciphers":
      return lower === "on" && !caps.preferServerCiphers
        ? `${unsupported(`"ssl_prefer_server_ciphers on"`, runtime)}: the client's cipher order is used`
        : null;
    case "ssl_ecdh_curve":
      return v !== "auto" && !caps.ecdhCurve ? `${unsupported(`"ssl_ecdh_curve"`, runtime)}: its default curves are used` : null;
    case "ssl_dhparam":
      return caps.dhparam ? null : `${unsupported(`"ssl_dhparam"`, runtime)}: its TLS layer has no DHE cipher suites`;
    case "ssl_conf_command":
      return caps.confCommand ? null : `${unsupported(`"ssl_conf_command ${v}"`, runtime)}: it has no OpenSSL configuration commands`;
    case "ssl_certificate_compression":
      return lower === "on" && !caps.certificateCompression
        ? unsupported(`"ssl_certificate_compression on"`, runtime)
        : null;
    case "ssl_session_timeout":
      return caps.sessionTimeout ? null : `${unsupported(`"ssl_session_timeout"`, runtime)}: its TLS layer keeps its own session lifetime`;
    case "ssl_session_tickets":
      return lower === "off" && !caps.ticketsOff
        ? `${unsupported(`"ssl_session_tickets off"`, runtime)}: its TLS layer always issues session tickets`
        : null;
    case "ssl_session_ticket_key":
      return caps.ticketKeys ? null : `${unsupported(`"ssl_session_ticket_key"`, runtime)}: session tickets are encrypted with a random key of this process`;
    case "ssl_session_cache": {
      const wantsCache = args.some((a) => a === "builtin" || a.startsWith("builtin:") || a.startsWith("shared:"));
      if (wantsCache && !caps.sessionCache) {
        return `"ssl_session_cache ${args.join(" ")}" is not supported by the ${runtime} runtime: it has no ` +
          `server-side session cache${args.some((a) => a.startsWith("shared:")) ? " (nor one shared between processes)" : ""}; ` +
          `sessions resume with session tickets, which stay on even with "ssl_session_tickets off"`;
      }
      if (v === "off" && !caps.resumptionOff) {
        return `${unsupported(`"ssl_session_cache off"`, runtime)}: its TLS layer always lets sessions resume with tickets`;
      }
      return null;
    }
  }
  return null;
}

/** ssl_* settings the runtime's TLS stack cannot apply, one line per directive written. */
export function tlsWarnings(config: Config, rt: WarnedRuntime): ConfigWarning[] {
  const { name: runtime, support } = resolve(rt);
  const out: ConfigWarning[] = [];
  for (const d of config.seen) {
    if (!d.name.startsWith("ssl_")) continue;
    const problem = tlsDirectiveProblem(d.name, d.args, runtime, support.tls);
    if (problem !== null) out.push({ message: problem, loc: d.loc });
  }
  return out;
}
