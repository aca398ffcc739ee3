// Name -> addresses through the configured resolver (mailgate extension:
// auth_http and Auth-Server by name). A and AAAA, as `resolver ipv4=/ipv6=`
// allow, asked in parallel; both answers are awaited so that the result is
// the same whichever comes first. Each lookup goes through the resolver's
// cache (valid= or the TTL) and its resolver_timeout. Pure: the lookups come
// through the `Lookup` function, as in client_host.ts.

import { TYPE_A, TYPE_AAAA } from "./dns_message.ts";
import { type Lookup, RESOLVE_NXDOMAIN, RESOLVE_SERVFAIL } from "./client_host.ts";

/** Addresses (IPv4 first, each family in answer order), or nginx's failure code. */
export type HostAddresses = { ok: true; addresses: string[] } | { ok: false; code: number };

export async function lookupHostAddresses(
  name: string,
  lookup: Lookup,
  opts: { ipv4: boolean; ipv6: boolean },
): Promise<HostAddresses> {
  const types: number[] = [];
  if (opts.ipv4) types.push(TYPE_A);
  if (opts.ipv6) types.push(TYPE_AAAA);
  const results = await Promise.all(
    types.map((t) =>
      Promise.resolve().then(() => lookup(name, t)).catch(() => ({
        ok: false as const,
        code: RESOLVE_SERVFAIL,
      }))
    ),
  );
  const addresses: string[] = [];
  let failure = RESOLVE_NXDOMAIN;
  for (const r of results) {
    if (r.ok) addresses.push(...r.values);
    // A real failure (timeout, SERVFAIL) says more than "no such record".
    else if (r.code !== RESOLVE_NXDOMAIN) failure = r.code;
  }
  return addresses.length > 0 ? { ok: true, addresses } : { ok: false, code: failure };
}
