// Starts a private Postfix on loopback as a real SMTP backend for tests: its
// own config directory, queue, data directory, log file and virtual maildirs,
// all in a temp dir; smtpd on one free 127.0.0.1 port (no port 25, no
// system instance, no syslog). It delivers only to virtual mailboxes of the
// given domain; every other destination is the `error` transport, so nothing
// ever leaves the machine. XCLIENT is allowed from 127.0.0.0/8 and relaying
// from mynetworks (127.0.0.0/8), so mailgate may log in with or without
// XCLIENT and with `smtp_auth none`.
//
// Postfix daemonizes (master -w); stop() runs `postfix stop` and then waits
// for the master pid (from the queue's pid file) and the children it had to
// exit, killing leftovers by pid. Needs root (Postfix's own requirement).

import { spawnSync } from "node:child_process";
import { Buffer } from "node:buffer";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { tempDir } from "./mailgate.ts";
import { freePorts } from "./ports.ts";

/** Owner of the virtual maildirs (nobody). */
const MAIL_UID = 65534;
const MAIL_GID = 65534;
const CMD_TIMEOUT_MS = 30000;
const STOP_WAIT_MS = 10000;
/** Postfix's maximum message size here; tests send a few MiB. */
export const POSTFIX_MESSAGE_LIMIT = 50 * 1024 * 1024;

export interface Postfix {
  dir: string;
  port: number;
  /** Raw files delivered to user's maildir (new/), in name order. */
  delivered(user: string): Buffer[];
  /** Waits (bounded) until a delivered message of user contains `marker`; returns it. */
  waitDelivered(user: string, marker: string, ms?: number): Promise<Buffer>;
  log(): string;
  stop(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Direct children of pid, from /proc (Linux). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "latin1");
      // pid (comm) state ppid ...; comm may hold spaces, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(pidAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(pidAlive);
  }
  return left;
}

export async function startPostfix(opts: { domain: string; users: string[] }): Promise<Postfix> {
  const { dir, cleanup } = tempDir("mailgate-postfix-");
  chmodSync(dir, 0o755); // Postfix daemons (user postfix) chdir into the queue below it
  const [port] = await freePorts(1);
  const etc = join(dir, "etc");
  const queue = join(dir, "queue");
  const data = join(dir, "data");
  const mail = join(dir, "mail");
  for (const d of [etc, queue, data, mail]) mkdirSync(d);
  const pf = spawnSync("id", ["-u", "postfix"], { encoding: "utf8" });
  if (pf.status !== 0) throw new Error("user postfix is missing (install the postfix package)");
  chownSync(data, Number(pf.stdout.trim()), 0);
  chownSync(mail, MAIL_UID, MAIL_GID);
  const mailboxes = opts.users.map((u) => `${u}=${u.split("@")[0]}/`).join(", ");
  writeFileSync(join(etc, "main.cf"), `
compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${data}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = ${dir}/postfix.log
maillog_file_prefixes = ${dir}
myhostname = postfix.test
mydomain = postfix.test
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
relay_domains =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_peername_lookup = no
# No header rewriting or added Date:/Message-ID: for these clients: the
# delivered message must be the sent one plus the fields delivery adds.
local_header_rewrite_clients =
smtputf8_enable = no
biff = no
message_size_limit = ${POSTFIX_MESSAGE_LIMIT}
virtual_mailbox_limit = 0
virtual_mailbox_domains = ${opts.domain}
virtual_mailbox_base = ${mail}
virtual_mailbox_maps = inline:{ ${mailboxes} }
virtual_uid_maps = static:${MAIL_UID}
virtual_gid_maps = static:${MAIL_GID}
default_transport = error:this test Postfix delivers nowhere else
relay_transport = error:this test Postfix delivers nowhere else
`);
  // Only the services this setup uses; no chroot (the temp dir has no copies of /etc files).
  writeFileSync(join(etc, "master.cf"), `
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
`);
  const log = () => (existsSync(join(dir, "postfix.log")) ? readFileSync(join(dir, "postfix.log"), "utf8") : "");
  // `postfix start` returns once the master has initialized (master -w).
  const r = spawnSync("postfix", ["-c", etc, "start"], { encoding: "utf8", timeout: CMD_TIMEOUT_MS });
  const pidFile = join(queue, "pid", "master.pid");
  const masterPid = existsSync(pidFile) ? Number(readFileSync(pidFile, "latin1").trim()) : 0;
  if (r.status !== 0 || !masterPid) {
    if (masterPid && pidAlive(masterPid)) process.kill(masterPid, "SIGKILL");
    cleanup();
    throw new Error(`postfix did not start (exit ${r.status}): ${r.stdout}${r.stderr}${log()}`);
  }
  const userDir = (user: string) => join(mail, user.split("@")[0], "new");
  const delivered = (user: string): Buffer[] => {
    const d = userDir(user);
    if (!existsSync(d)) return [];
    return readdirSync(d).sort().map((f) => readFileSync(join(d, f)));
  };
  return {
    dir,
    port,
    delivered,
    async waitDelivered(user, marker, ms = 20000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = delivered(user).find((b) => b.includes(marker));
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`no message with ${JSON.stringify(marker)} for ${user}; log:\n${log()}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    log,
    async stop() {
      const children = pidAlive(masterPid) ? childPids(masterPid) : [];
      spawnSync("postfix", ["-c", etc, "stop"], { timeout: CMD_TIMEOUT_MS });
      const left = await waitGone([masterPid, ...children], STOP_WAIT_MS);
      for (const pid of left) process.kill(pid, "SIGKILL");
      await waitGone(left, STOP_WAIT_MS);
      cleanup();
    },
  };
}

/** Header fields Postfix puts on top of a message it delivers to a virtual maildir, in order. */
export const POSTFIX_ADDED_FIELDS = ["Return-Path", "X-Original-To", "Delivered-To", "Received"] as const;

/**
 * Splits a delivered file into the fields Postfix added at the top (exactly
 * POSTFIX_ADDED_FIELDS, in that order, each with its continuation lines) and
 * the rest, which is the message as sent (with LF line ends: Postfix stores
 * and delivers lines with LF). Throws if the top is not those fields.
 */
export function splitPostfixDelivery(file: Buffer): { added: Record<string, string>; rest: Buffer } {
  const added: Record<string, string> = {};
  let pos = 0;
  for (const name of POSTFIX_ADDED_FIELDS) {
    const prefix = `${name}: `;
    if (file.subarray(pos, pos + prefix.length).toString("latin1") !== prefix) {
      throw new Error(`expected ${name}: at offset ${pos}, found ${JSON.stringify(file.subarray(pos, pos + 60).toString("latin1"))}`);
    }
    let end = pos;
    // A field ends at an LF not followed by a space or tab (folding).
    for (let guard = 0; guard < 100; guard++) {
      end = file.indexOf(10, end);
      if (end < 0) throw new Error(`unterminated ${name} field`);
      end++;
      if (file[end] !== 0x20 && file[end] !== 0x09) break;
    }
    added[name] = file.subarray(pos + prefix.length, end - 1).toString("latin1");
    pos = end;
  }
  return { added, rest: file.subarray(pos) };
}
