// Wire strings shared by the benchmark's load generator and lean backend,
// in one place so both sides agree byte for byte.

import { Buffer } from "node:buffer";

export const USER = "bench";
export const PASS = "secret";

/** IMAP tag used by the generator for every command. */
export const TAG = "a";

export const IMAP_LOGIN = `${TAG} LOGIN ${USER} ${PASS}\r\n`;
export const IMAP_LOGOUT = `${TAG} LOGOUT\r\n`;
/** Asks the lean backend for n bytes: `a DOWN <n>` -> `* DOWN {n}` CRLF <n bytes> CRLF `a OK down`. */
export const imapDown = (n: number) => `${TAG} DOWN ${n}\r\n`;
export const downHeader = (n: number) => `* DOWN {${n}}\r\n`;
export const DOWN_TRAILER = `\r\n${TAG} OK down\r\n`;

export const POP3_USER = `USER ${USER}\r\n`;
export const POP3_PASS = `PASS ${PASS}\r\n`;
export const POP3_QUIT = "QUIT\r\n";
/**
 * The latency load's POP3 command. The lean backend answers it in three
 * writes (status line, RETR_BODY, the terminating dot), as a real server's
 * RETR arrives in pieces: a proxy that writes each piece with Nagle on then
 * waits for the client's delayed ACK.
 */
export const POP3_RETR = "RETR 1\r\n";
export const RETR_BODY = ("y".repeat(70) + "\r\n").repeat(40);
export const RETR_END = ".\r\n";
/** The latency load's IMAP command: `a DOWN n` (header, bytes, trailer: three writes). */
export const LATENCY_DOWN_BYTES = 2000;

export const SMTP_EHLO = "EHLO bench.client\r\n";
export const SMTP_AUTH = `AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASS}`).toString("base64")}\r\n`;
export const SMTP_MAIL = "MAIL FROM:<bench@client.test>\r\n";
export const SMTP_RCPT = "RCPT TO:<sink@backend.test>\r\n";
export const SMTP_DATA = "DATA\r\n";
export const SMTP_DATA_END = ".\r\n";
export const SMTP_QUIT = "QUIT\r\n";

/** Bytes per write in the relay loads. */
export const BLOCK_BYTES = 1 << 20;
const LINE = "x".repeat(76) + "\r\n";

/**
 * 1 MiB of 78-byte text lines: no line starts with ".", so it is valid SMTP
 * DATA as is, and a block ends in CRLF, so `.` CRLF after the last block
 * ends the message. The tail is padded with x's up to a final CRLF.
 */
export function textBlock(): Buffer {
  const b = Buffer.alloc(BLOCK_BYTES, "x");
  for (let off = LINE.length - 2; off + 2 <= BLOCK_BYTES; off += LINE.length) {
    b.write("\r\n", off, "latin1");
  }
  b.write("\r\n", BLOCK_BYTES - 2, "latin1");
  return b;
}

/** Relay sizes are whole blocks. */
export const blocksFor = (bytes: number) => Math.max(1, Math.round(bytes / BLOCK_BYTES));
