// The IP literal code moved to lib/core/ip.ts (one module for the
// configuration, the PROXY protocol, the resolver and auth). This re-export
// remains only for a file still in progress elsewhere
// (lib/proxy/own_addresses.ts); import lib/core/ip.ts instead, and delete
// this file once nothing imports it.

export { type Cidr, formatIPv4, formatIPv6, parseCidr, parseIPv4, parseIPv6 } from "../core/ip.ts";
