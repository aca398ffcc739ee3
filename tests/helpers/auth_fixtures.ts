// Fixtures for the auth_http unit tests: the URL of a loopback auth server
// and an auth request.

import type { AuthRequest } from "../../lib/auth/types.ts";
import type { AuthHttpUrl } from "../../lib/config/types.ts";

/** `http://127.0.0.1:<port>/auth`, as the config loader would have parsed it. */
export function tcpAuthUrl(port: number): AuthHttpUrl {
  return {
    raw: `http://127.0.0.1:${port}/auth`,
    target: { kind: "tcp", host: "127.0.0.1", port },
    hostHeader: "127.0.0.1",
    uri: "/auth",
  };
}

/** An IMAP LOGIN by alice (second attempt), with `over` applied. */
export function authRequest(over: Partial<AuthRequest> = {}): AuthRequest {
  return {
    protocol: "imap",
    creds: { method: "plain", user: "alice", pass: "secret", salt: null, tag: "a1" },
    attempt: 2,
    clientIp: "192.0.2.7",
    clientHost: null,
    proxyProtocol: null,
    tls: null,
    verifyClient: "off",
    passClientCert: false,
    ...over,
  };
}
