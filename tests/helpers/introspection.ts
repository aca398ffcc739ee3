// A tiny OAuth 2.0 token introspection endpoint (RFC 7662) on loopback, for
// Dovecot's oauth2 passdb in peer tests: POST /introspect with
// `token=<token>` (Dovecot's introspection_mode = post) answers
// {"active":true,"username":"<user>"} for a known token and
// {"active":false} for anything else. Records every token it was asked
// about, so a test can tell that a token really reached the endpoint.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** Largest request body read (a token of a few KB fits many times). */
const MAX_BODY = 64 * 1024;

export interface Introspection {
  /** `http://127.0.0.1:<port>/introspect` */
  url: string;
  /** Tokens asked about, in order. */
  seen: string[];
  stop(): Promise<void>;
}

/** tokens: token -> the user it belongs to. */
export async function startIntrospection(tokens: Record<string, string>): Promise<Introspection> {
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.setEncoding("latin1");
    req.on("data", (d: string) => {
      body += d;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on("end", () => {
      const params = new URLSearchParams(body);
      // post mode sends the token in the body; an Authorization header is read too (auth mode).
      const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "");
      const token = params.get("token") ?? auth?.[1] ?? "";
      seen.push(token);
      const user = Object.hasOwn(tokens, token) ? tokens[token] : undefined;
      const answer = user === undefined ? { active: false } : { active: true, username: user };
      res.writeHead(200, { "Content-Type": "application/json", Connection: "close" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/introspect`,
    seen,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
