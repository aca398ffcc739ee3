// PEM files as OpenSSL reads them: a file may hold several blocks of
// different types (a certificate chain and its key in one file, as nginx's
// documentation allows; CAs and CRLs in one bundle), and each reader takes
// the blocks of the type it wants and skips the others, text between blocks
// included. TLS stacks that are handed the whole file do not all do that
// (Deno's node:crypto refuses a key file that starts with a certificate:
// "DECODER routines::unsupported"), so every consumer is handed only its
// blocks. Runtime-neutral: the caller reads the file.

/** One `-----BEGIN <label>-----` … `-----END <label>-----` block. */
export interface PemBlock {
  label: string;
  /** The whole block, BEGIN and END lines (and any RFC 1421 headers) included, LF line ends, ending in "\n". */
  text: string;
}

/** The labels of a private key: PKCS#8 (plain or encrypted) and the traditional forms. */
const KEY_LABELS = new Set([
  "PRIVATE KEY",
  "ENCRYPTED PRIVATE KEY",
  "RSA PRIVATE KEY",
  "EC PRIVATE KEY",
  "DSA PRIVATE KEY",
]);

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/;

/**
 * The complete blocks of a PEM text, in order. A block whose END line is
 * missing or names another label is not a block (OpenSSL fails to read it
 * too); anything outside blocks is ignored.
 */
export function splitPem(text: string): PemBlock[] {
  const lines = text.split("\n");
  const out: PemBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = BEGIN.exec(stripCr(lines[i]));
    if (m === null) continue;
    const label = m[1];
    const end = `-----END ${label}-----`;
    const body: string[] = [`-----BEGIN ${label}-----`];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = stripCr(lines[j]).trimEnd();
      if (l === end) break;
      if (BEGIN.test(l)) {
        j = lines.length; // a new BEGIN before this block's END: this one is broken
        break;
      }
      body.push(l);
    }
    if (j >= lines.length) {
      // Not terminated: look for the next block right after the broken BEGIN line.
      continue;
    }
    body.push(end);
    out.push({ label, text: body.join("\n") + "\n" });
    i = j;
  }
  return out;
}

function stripCr(l: string): string {
  return l.endsWith("\r") ? l.slice(0, -1) : l;
}

/** The text of the blocks with `label`, concatenated in file order ("" when none). */
export function blocksOf(blocks: PemBlock[], label: string): string {
  return blocks.filter((b) => b.label === label).map((b) => b.text).join("");
}

/** Every certificate (leaf first, then its chain, as written), or "" when none. */
export function certificatesOf(blocks: PemBlock[]): string {
  return blocksOf(blocks, "CERTIFICATE");
}

/** The first private key block, as OpenSSL's PEM_read_bio_PrivateKey takes it, or null. */
export function privateKeyOf(blocks: PemBlock[]): PemBlock | null {
  return blocks.find((b) => KEY_LABELS.has(b.label)) ?? null;
}

/** Every CRL, or "" when none. */
export function crlsOf(blocks: PemBlock[]): string {
  return blocksOf(blocks, "X509 CRL");
}

/** The first DH PARAMETERS block, or "" when none. */
export function dhParamsOf(blocks: PemBlock[]): string {
  return blocks.find((b) => b.label === "DH PARAMETERS")?.text ?? "";
}

/** A configured PEM value: "data:<PEM text>" is the text itself (nginx ≥ 1.15.10), else a file name. */
export function isDataValue(value: string): boolean {
  return value.startsWith("data:");
}
