// fetchmail, one command at a time, directly against Dovecot and through
// mailgate (issue 13's latency check): 300 messages over POP3 and IMAP,
// plain and STARTTLS, on each target. Prints wall-clock seconds per run.
//   N=300 T=deno,bun,binary deno run -A --unstable-net tools/fetchmail_latency.ts
// Needs fetchmail and Dovecot (as root: Dovecot switches users). Loopback
// only; Dovecot and every mailgate are stopped at the end.

import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDovecot } from "../tests/helpers/dovecot.ts";
import { startMailgate, ROOT, type Target } from "../tests/helpers/mailgate.ts";
import { freePorts } from "../tests/helpers/ports.ts";
const TLS = join(ROOT, "tests/fixtures/tls");
const USER = "alice@example.org", PASS = "wonderland";
const N = Number(process.env.N ?? 300);
const targets = (process.env.T ?? "deno,bun").split(",").filter(Boolean) as Target[];
const dv = await startDovecot({ [USER]: PASS }, { ssl: { cert: join(TLS, "server.pem"), key: join(TLS, "server.key") } });
for (let i = 0; i < N; i++) dv.deliver(USER, `${i}.m`, `Subject: m${i}\r\n\r\n` + "x".repeat(70).concat("\r\n").repeat(20 + (i * 37) % 100));
const tmp = mkdtempSync(join(tmpdir(), "mailgate-fetchmail-"));
function fm(port: number, proto: string, tls: boolean) {
  const rc = join(tmp, "rc");
  writeFileSync(rc, `poll 127.0.0.1 port ${port} proto ${proto} user "${USER}" password "${PASS}" ${tls ? 'sslproto "TLS1.2+" no sslcertck' : 'sslproto ""'} keep fetchall mda "cat >/dev/null"\n`);
  chmodSync(rc, 0o600);
  const t0 = performance.now();
  const r = spawnSync("fetchmail", ["-f", rc, "-i", join(tmp, "ids"), "--nosyslog", "-s"], { timeout: 120000, env: { ...process.env, HOME: tmp } });
  const ms = performance.now() - t0;
  if (r.status !== 0) return `ERR ${r.status} ${String(r.stderr).slice(-300)}`;
  return (ms / 1000).toFixed(2) + "s";
}
try {
console.log("direct pop3", fm(dv.pop3Port, "pop3", false), "stls", fm(dv.pop3Port, "pop3", true));
console.log("direct imap", fm(dv.imapPort, "imap", false), "stls", fm(dv.imapPort, "imap", true));
for (const t of targets) {
  const p = await freePorts(2);
  const mg = await startMailgate(t, `
error_log stderr notice;
events { }
mail {
  ssl_certificate ${join(TLS, "server.pem")};
  ssl_certificate_key ${join(TLS, "server.key")};
  server_name mail.test;
  server { listen 127.0.0.1:${p[0]}; protocol pop3; starttls on; auth_table users.table; }
  server { listen 127.0.0.1:${p[1]}; protocol imap; starttls on; auth_table imap.table; }
}
`, { "users.table": `@example.org 127.0.0.1:${dv.pop3Port}\n`, "imap.table": `@example.org 127.0.0.1:${dv.imapPort}\n` });
  console.log(t, "pop3", fm(p[0], "pop3", false), "stls", fm(p[0], "pop3", true));
  console.log(t, "imap", fm(p[1], "imap", false), "stls", fm(p[1], "imap", true));
  await mg.stop();
}
} finally {
  await dv.stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
