// max_commands (freenginx ngx_mail_core_module): at most N commands before
// authentication, then the protocol's invalid-command reply and the close.
// Counted as freenginx counts: parsed commands and SASL answers, not invalid
// lines (max_errors) nor IMAP literal continuations; never reset by a refusal.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createImapPreauth } from "../../lib/imap/preauth.ts";
import { createPop3Preauth } from "../../lib/pop3/preauth.ts";
import { createSmtpPreauth } from "../../lib/smtp/preauth.ts";
import type { PreauthContext, PreauthMachine } from "../../lib/core/machine.ts";
import type { ServerConfig } from "../../lib/config/types.ts";
import { drive, events } from "../helpers/drive_machine.ts";
import { imapConfig, pop3Config, SALT, smtpConfig } from "../helpers/property.ts";

const LOG = "LOG info client sent too many commands";

function ctx(config: ServerConfig): PreauthContext {
  return { config, tls: false, makeSalt: () => SALT };
}
const imap = (o: Partial<ServerConfig>): PreauthMachine => createImapPreauth(ctx(imapConfig(o)));
const pop3 = (o: Partial<ServerConfig>): PreauthMachine => createPop3Preauth(ctx(pop3Config(o)));
const smtp = (o: Partial<ServerConfig>): PreauthMachine => createSmtpPreauth(ctx(smtpConfig(o)));

describe("IMAP", () => {
  test("the command past the limit gets tagged BAD, then the close", () => {
    assert.deepEqual(events(imap({ maxCommands: 2 }), "a NOOP\r\nb NOOP\r\nc NOOP\r\nd NOOP\r\n"), [
      "S: a OK completed\r\n",
      "S: b OK completed\r\n",
      LOG,
      "S: c BAD invalid command\r\n",
      "CLOSE",
    ]);
  });
  test("invalid lines count toward max_errors only; a literal's continuation is not a command", () => {
    assert.deepEqual(
      events(
        imap({ maxCommands: 1, maxErrors: 10 }),
        "x\r\n",
        "y\r\n",
        "a LOGIN {1}\r\n",
        "u p\r\n",
      ),
      [
        "S: * BAD invalid command\r\n",
        "S: * BAD invalid command\r\n",
        "S: + OK\r\n",
        'AUTH plain user="u" pass="p" salt=null tag=a',
        "S: a NO denied\r\n",
      ],
    );
  });
  test("a SASL answer counts (with the AUTHENTICATE tag); a refusal does not reset the count", () => {
    assert.deepEqual(events(imap({ maxCommands: 1 }), "a AUTHENTICATE PLAIN\r\n", "AHUAcA==\r\n"), [
      "S: + \r\n",
      LOG,
      "S: a BAD invalid command\r\n",
      "CLOSE",
    ]);
    const run = drive(imap({ maxCommands: 2 }), [
      "a LOGIN u p\r\n",
      "b LOGIN u p\r\n",
      "c LOGIN u p\r\n",
    ]);
    assert.deepEqual(run.events.slice(-3), [LOG, "S: c BAD invalid command\r\n", "CLOSE"]);
  });
  test("default (1000, freenginx's): the 1001st command closes", () => {
    const m = imap({ maxCommands: 1000 });
    const run = drive(m, ["a NOOP\r\n".repeat(1001)]);
    assert.equal(run.events.filter((e) => e === "S: a OK completed\r\n").length, 1000);
    assert.deepEqual(run.events.slice(-3), [LOG, "S: a BAD invalid command\r\n", "CLOSE"]);
  });
});

describe("POP3", () => {
  test("the command past the limit gets -ERR, then the close", () => {
    assert.deepEqual(events(pop3({ maxCommands: 2 }), "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"), [
      "S: +OK\r\n",
      "S: +OK\r\n",
      LOG,
      "S: -ERR invalid command\r\n",
      "CLOSE",
    ]);
  });
  test("invalid lines are not counted; a SASL answer is", () => {
    assert.deepEqual(
      events(
        pop3({ maxCommands: 1, maxErrors: 10 }),
        "BOGUS\r\n",
        "AUTH PLAIN\r\n",
        "AHUAcA==\r\n",
      ),
      [
        "S: -ERR invalid command\r\n",
        "S: + \r\n",
        LOG,
        "S: -ERR invalid command\r\n",
        "CLOSE",
      ],
    );
  });
});

describe("SMTP", () => {
  test("the command past the limit gets 500 5.5.1, then the close", () => {
    assert.deepEqual(events(smtp({ maxCommands: 2 }), "NOOP\r\nRSET\r\nNOOP\r\nNOOP\r\n"), [
      "S: 250 2.0.0 OK\r\n",
      "S: 250 2.0.0 OK\r\n",
      LOG,
      "S: 500 5.5.1 Invalid command\r\n",
      "CLOSE",
    ]);
  });
  test("invalid lines are not counted; an AUTH answer is", () => {
    assert.deepEqual(
      events(
        smtp({ maxCommands: 2, maxErrors: 10 }),
        "BOGUS\r\n",
        "EHLO x\r\n",
        "AUTH LOGIN\r\n",
        "dQ==\r\n",
      ).slice(-4),
      [
        "S: 334 VXNlcm5hbWU6\r\n",
        LOG,
        "S: 500 5.5.1 Invalid command\r\n",
        "CLOSE",
      ],
    );
  });
});
