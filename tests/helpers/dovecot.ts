// Starts a private Dovecot (IMAP, POP3, submission) on loopback with its own
// config, users and maildirs in a temp dir, as a real backend for tests.
// Stopped by pid. Needs root (Dovecot switches to the mail uid) - CI is root.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { tempDir } from "./mailgate.ts";
import { freePorts } from "./ports.ts";

const MAIL_UID = 65534;
const MAIL_GID = 65534;

export interface Dovecot {
  dir: string;
  imapPort: number;
  pop3Port: number;
  submissionPort: number;
  /** The address it listens on. */
  host: string;
  /** Implicit-TLS listeners (opts.ssl only; 0 otherwise). */
  imapsPort: number;
  pop3sPort: number;
  /** Writes a message into user's INBOX (maildir new/). */
  deliver(user: string, name: string, body: Uint8Array | string): void;
  log(): string;
  stop(): Promise<void>;
}

/** Whether real-peer tests can run here; with MAILGATE_REQUIRE_PEERS=1 a missing peer is an error. */
export function peersAvailable(...tools: string[]): { ok: boolean; why: string } {
  for (const t of tools) {
    const r = spawnSync("sh", ["-c", `command -v ${t}`]);
    if (r.status !== 0) {
      const why = `${t} is not installed (apt-get install as .ci/run does)`;
      if (process.env.MAILGATE_REQUIRE_PEERS === "1") throw new Error(why);
      return { ok: false, why };
    }
  }
  if (process.getuid && process.getuid() !== 0) {
    const why = "Dovecot tests need root";
    if (process.env.MAILGATE_REQUIRE_PEERS === "1") throw new Error(why);
    return { ok: false, why };
  }
  return { ok: true, why: "" };
}

export interface DovecotOptions {
  submissionRelay?: number;
  /**
   * TLS: certificate and key files (PEM). Turns on STARTTLS/STLS on the
   * plain listeners and opens imaps/pop3s listeners. `required` sets
   * `ssl = required` (no authentication without TLS); Dovecot still counts
   * a client whose address equals the listening address as secured, so
   * pair it with `host: "127.0.0.2"` to make a plaintext login fail.
   */
  ssl?: { cert: string; key: string; required?: boolean };
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /**
   * login_trusted_networks: peers allowed to forward a client's address
   * (IMAP ID x-originating-ip, POP3 XCLIENT), e.g. "127.0.0.1/32".
   */
  trustedNetworks?: string;
  /**
   * An oauth2 passdb (for XOAUTH2 / OAUTHBEARER only; PLAIN and LOGIN still
   * use the users file) validating tokens at this introspection URL
   * (introspection_mode = post, username_attribute = username, active =
   * true), with auth_failure_delay 0 and the auth penalty off (Dovecot's
   * documented switch), so refused tokens do not slow down later logins.
   */
  oauth2IntrospectionUrl?: string;
}

export async function startDovecot(users: Record<string, string>, opts: DovecotOptions = {}): Promise<Dovecot> {
  const { dir, cleanup } = tempDir("mailgate-dovecot-");
  chmodSync(dir, 0o755); // Dovecot's auth process (user dovecot) reads the users file
  const [imapPort, pop3Port, submissionPort] = await freePorts(3);
  const host = opts.host ?? "127.0.0.1";
  const [imapsPort, pop3sPort] = opts.ssl ? await freePorts(2) : [0, 0];
  const ssl = opts.ssl
    ? `ssl = ${opts.ssl.required ? "required" : "yes"}\nssl_cert = <${opts.ssl.cert}\nssl_key = <${opts.ssl.key}\n`
    : "ssl = no\n";
  for (const d of ["run", "state", "home"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "users"), Object.entries(users).map(([u, p]) => `${u}:{PLAIN}${p}\n`).join(""));
  const protocols = opts.submissionRelay ? "imap pop3 submission" : "imap pop3";
  let oauth2 = "";
  if (opts.oauth2IntrospectionUrl) {
    writeFileSync(
      join(dir, "dovecot-oauth2.conf.ext"),
      `introspection_mode = post\nintrospection_url = ${opts.oauth2IntrospectionUrl}\n` +
        "username_attribute = username\nactive_attribute = active\nactive_value = true\n",
    );
    oauth2 = `auth_failure_delay = 0
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/dovecot-oauth2.conf.ext
}
`;
  }
  const conf = `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = mailgate-test-${imapPort}
protocols = ${protocols}
listen = ${host}
${ssl}disable_plaintext_auth = no
${opts.trustedNetworks ? `login_trusted_networks = ${opts.trustedNetworks}\n` : ""}auth_mechanisms = plain login${opts.oauth2IntrospectionUrl ? " xoauth2 oauthbearer" : ""}
${oauth2}first_valid_uid = 1
last_valid_uid = 0
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${dir}/home/%u
}
mail_location = maildir:~/Maildir
service imap-login {
  chroot =
  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = ${imapsPort}${opts.ssl ? "\n    ssl = yes" : ""}
  }
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    port = ${pop3Port}
  }
  inet_listener pop3s {
    port = ${pop3sPort}${opts.ssl ? "\n    ssl = yes" : ""}
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    port = ${submissionPort}
  }
}
${opts.submissionRelay ? `submission_relay_host = 127.0.0.1\nsubmission_relay_port = ${opts.submissionRelay}\nsubmission_relay_trusted = yes\n` : ""}
service anvil {
  chroot =${opts.oauth2IntrospectionUrl ? "\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }" : ""}
}
`;
  writeFileSync(join(dir, "dovecot.conf"), conf);
  chownSync(join(dir, "home"), MAIL_UID, MAIL_GID);
  const proc: ChildProcess = spawn("dovecot", ["-F", "-c", join(dir, "dovecot.conf")], { stdio: "ignore" });
  const log = () => (existsSync(join(dir, "dovecot.log")) ? readFileSync(join(dir, "dovecot.log"), "utf8") : "");
  const deadline = Date.now() + 10000;
  while (!/starting up/.test(log())) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill("SIGKILL");
      throw new Error(`dovecot did not start: ${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    dir,
    imapPort,
    pop3Port,
    submissionPort,
    host,
    imapsPort,
    pop3sPort,
    deliver(user, name, body) {
      const md = join(dir, "home", user, "Maildir");
      for (const sub of ["", "new", "cur", "tmp"]) {
        const p = join(md, sub);
        if (!existsSync(p)) {
          mkdirSync(p, { recursive: true });
        }
      }
      for (const p of [join(dir, "home", user), md, join(md, "new"), join(md, "cur"), join(md, "tmp")]) {
        chownSync(p, MAIL_UID, MAIL_GID);
      }
      const f = join(md, "new", name);
      writeFileSync(f, body);
      chownSync(f, MAIL_UID, MAIL_GID);
    },
    log,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      cleanup();
    },
  };
}

/** Files in user's maildir (new and cur), for submission checks. */
export function maildirFiles(d: Dovecot, user: string): string[] {
  const md = join(d.dir, "home", user, "Maildir");
  const out: string[] = [];
  for (const sub of ["new", "cur"]) {
    const p = join(md, sub);
    if (existsSync(p)) for (const f of readdirSync(p)) if (statSync(join(p, f)).isFile()) out.push(join(p, f));
  }
  return out;
}
