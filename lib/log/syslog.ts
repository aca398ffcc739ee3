// syslog:server=ADDR[:PORT][,facility=F][,severity=S][,tag=T][,nohostname]
// One UDP datagram per line, RFC 3164 shape as nginx writes it:
//   <PRI>Mmm dd hh:mm:ss hostname tag: [level] pid#0: message
// (the error log's own date is dropped: the syslog header carries the time).

import { hostname } from "node:os";
import type { DatagramSocket, Runtime } from "../runtime/types.ts";

/** What syslog needs of the runtime: UDP sockets, made when the first line is sent. */
export type SyslogTransport = Pick<Runtime, "datagram">;

const FACILITIES = [
  "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
  "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2",
  "local3", "local4", "local5", "local6", "local7",
];
const SEVERITIES = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export interface SyslogSpec {
  host: string;
  port: number;
  facility: number;
  /** Fixed severity, or null to use each line's level. */
  severity: number | null;
  tag: string;
  nohostname: boolean;
}

/** Parses the part after "syslog:"; returns an error text or the spec. */
export function parseSyslogSpec(spec: string): SyslogSpec | string {
  const body = spec.startsWith("syslog:") ? spec.slice(7) : spec;
  const out: SyslogSpec = { host: "", port: 514, facility: 23, severity: null, tag: "mailgate", nohostname: false };
  for (const part of body.split(",")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const val = eq < 0 ? "" : part.slice(eq + 1);
    if (key === "server") {
      const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(val) ?? /^([^:]+)(?::(\d+))?$/.exec(val);
      if (!m) return `invalid syslog server "${val}"`;
      out.host = m[1];
      if (m[2]) {
        const p = Number(m[2]);
        if (p < 1 || p > 65535) return `invalid port in syslog server "${val}"`;
        out.port = p;
      }
    } else if (key === "facility") {
      const f = FACILITIES.indexOf(val);
      if (f < 0) return `unknown syslog facility "${val}"`;
      out.facility = f;
    } else if (key === "severity") {
      const s = SEVERITIES.indexOf(val);
      if (s < 0) return `unknown syslog severity "${val}"`;
      out.severity = s;
    } else if (key === "tag") {
      if (!/^\w{1,32}$/.test(val)) return `syslog "tag" only allows alphanumeric characters and underscore`;
      out.tag = val;
    } else if (key === "nohostname") {
      out.nohostname = true;
    } else {
      return `unknown syslog parameter "${part}"`;
    }
  }
  if (!out.host) return "no syslog server specified";
  return out;
}

const parsed = new Map<string, SyslogSpec | null>();
// One socket per address family for the whole process (every error log and
// every reload shares them), as nginx keeps one per syslog target. They
// never keep the process alive.
let socket4: DatagramSocket | null = null;
let socket6: DatagramSocket | null = null;
const host = hostname().toLowerCase();

function sock(transport: SyslogTransport, v6: boolean): DatagramSocket {
  if (v6) {
    if (!socket6) {
      socket6 = transport.datagram({ family: 6 });
      socket6.unref();
    }
    return socket6;
  }
  if (!socket4) {
    socket4 = transport.datagram({ family: 4 });
    socket4.unref();
  }
  return socket4;
}

export function syslogHeader(s: SyslogSpec, level: number, now = new Date()): string {
  const sev = s.severity ?? level;
  const d = now.getDate();
  const hh = String(now.getHours()).padStart(2, "0");
  const mm = String(now.getMinutes()).padStart(2, "0");
  const ss = String(now.getSeconds()).padStart(2, "0");
  const date = `${MONTHS[now.getMonth()]} ${d < 10 ? " " + d : d} ${hh}:${mm}:${ss}`;
  return `<${s.facility * 8 + sev}>${date} ${s.nohostname ? "" : host + " "}${s.tag}: `;
}

/** Sends one error-log line (with its leading date) to the syslog target. */
export function sendSyslog(transport: SyslogTransport, spec: string, level: number, line: string): void {
  let s = parsed.get(spec);
  if (s === undefined) {
    const r = parseSyslogSpec(spec);
    s = typeof r === "string" ? null : r;
    parsed.set(spec, s);
  }
  if (!s) return;
  const msg = syslogHeader(s, level) + line.slice(20);
  const v6 = s.host.includes(":");
  const socket = sock(transport, v6);
  try {
    socket.send(msg, s.port, s.host);
  } catch {
    // syslog is best effort, as in nginx; a dead socket is replaced on the next line.
    socket.close();
    if (v6) socket6 = null;
    else socket4 = null;
  }
}
