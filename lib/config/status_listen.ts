// status_listen ADDRESS:PORT | [IPv6]:PORT | unix:PATH (mailgate extension,
// context mail, may repeat): where the metrics and status page listener
// binds. An explicit address is required (no bare port, no "*"): the
// listener shows operational data and belongs on a private address.

import { isStrictIpv4, isStrictIpv6 } from "../core/ip.ts";
import { type Directive, fail, type LoadState } from "./directive.ts";

export type StatusAddress = { kind: "tcp"; host: string; port: number } | {
  kind: "unix";
  path: string;
};

export function parseStatusAddress(v: string): StatusAddress | string {
  if (v.startsWith("unix:")) {
    const path = v.slice(5);
    return path === "" ? "no path" : { kind: "unix", path };
  }
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:\[\]]+):(\d+)$/.exec(v);
  if (!m) return "an address and a port are required";
  const host = m[1] === "localhost" ? "127.0.0.1" : m[1];
  if (!isStrictIpv4(host) && !isStrictIpv6(host)) return "the address must be an IP literal";
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return "invalid port";
  return { kind: "tcp", host, port };
}

export function handleStatusListen(d: Directive, st: LoadState): void {
  const a = parseStatusAddress(d.args[0]);
  if (typeof a === "string") {
    fail(d, `invalid value "${d.args[0]}" in "status_listen" directive: ${a}`);
  }
  st.mail!.append("status_listen", [a], d.loc);
}
