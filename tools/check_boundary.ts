// The runtime boundary, checked: no file outside lib/runtime/ (main.ts and
// the rest of lib/) may import node:net, node:tls, node:dgram,
// node:child_process or node:stream, use their lazy loaders
// (runtime/builtins.ts), or call Deno.* / Bun.*. Those belong to the
// adapters; everything else goes through the Runtime interface
// (runtime/types.ts). Prints FILE:LINE: text for each offence and exits 1.
// Run by `deno task check` and tools/test.ts's check step.
// Usage: deno run -A tools/check_boundary.ts [ROOT]

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import process from "node:process";

/** Builtins that open sockets or processes (or, node:stream, that only the TLS adapters need). */
const FORBIDDEN_MODULES = ["net", "tls", "dgram", "child_process", "stream"];
const LOADERS = ["nodeNet", "nodeTls", "nodeDgram", "nodeChildProcess", "nodeStream"];

const MODULE_RE = new RegExp(
  // "node:net" anywhere in code (import, import(), typeof import(), require,
  // getBuiltinModule); the bare "net" only where a module name stands.
  `(["'\`])node:(?:${FORBIDDEN_MODULES.join("|")})(?:/[\\w/]*)?\\1|` +
    `(?:\\bfrom\\s*|\\bimport\\s*\\(\\s*|\\brequire\\s*\\(\\s*|^\\s*import\\s*)(["'])(?:${
      FORBIDDEN_MODULES.join("|")
    })(?:/[\\w/]*)?\\2`,
);
// The socket/process loaders by name (runtime/builtins.ts also exports the
// neutral nodeCrypto/nodeDns, which any file may use), and the runtime API
// that loads a builtin behind the checker's back.
const LOADER_RE = new RegExp(`(?<![\\w$.])(?:${LOADERS.join("|")})\\b|\\bgetBuiltinModule\\b`);
/** Deno.x / Bun.x, and globalThis.Deno / (globalThis as ...).Bun. */
const GLOBAL_RE = /(?<![\w$.])(?:Deno|Bun)\s*(?:\?\.|\.|\[)|\.\s*(?:Deno|Bun)\b(?!\s*:)/;

export interface Offence {
  file: string;
  line: number;
  text: string;
  why: string;
}

/**
 * Two views of `text`, line for line: `code` with comments blanked, `bare`
 * with string contents blanked as well (so "Deno.listen" in a message is
 * not a call, while "node:net" in an import is still seen).
 */
export function codeViews(text: string): { code: string[]; bare: string[] } {
  let code = "";
  let bare = "";
  let i = 0;
  // Template literal nesting: each entry is the brace depth at which a `${` opened.
  const templates: number[] = [];
  let braces = 0;
  let last = ""; // last significant code character, to tell a regex from a division
  const put = (c: string, b: string) => {
    code += c;
    bare += b;
  };
  const blank = (s: string) => s.replace(/[^\n]/g, " ");
  const readString = (q: string) => {
    // From the opening quote to the closing one (or the end of a template part).
    let j = i + 1;
    while (j < text.length) {
      const c = text[j];
      if (c === "\\") {
        j += 2;
        continue;
      }
      if (c === q) {
        j++;
        break;
      }
      if (q === "`" && c === "$" && text[j + 1] === "{") break;
      if (q !== "`" && c === "\n") break;
      j++;
    }
    const s = text.slice(i, j);
    put(s, s[0] + blank(s.slice(1)));
    i = j;
    if (q === "`") openSubstitution();
  };
  /** At a template's `${`: code until the matching brace. */
  const openSubstitution = () => {
    if (text[i] !== "$" || text[i + 1] !== "{") return;
    put("${", "${");
    i += 2;
    braces++;
    templates.push(braces);
    last = "{";
  };
  while (i < text.length) {
    const c = text[i];
    const n = text[i + 1];
    if (c === "/" && n === "/") {
      const end = text.indexOf("\n", i);
      const s = text.slice(i, end < 0 ? text.length : end);
      put(blank(s), blank(s));
      i += s.length;
    } else if (c === "/" && n === "*") {
      const end = text.indexOf("*/", i + 2);
      const s = text.slice(i, end < 0 ? text.length : end + 2);
      put(blank(s), blank(s));
      i += s.length;
    } else if (c === '"' || c === "'" || c === "`") {
      readString(c);
      last = c;
    } else if (c === "/" && (last === "" || "(,=:[!&|?{};+-*%<>~^".includes(last) || /\breturn\s*$/.test(code))) {
      // A regex literal: skip to its closing slash (classes may hold one).
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== "\n") {
        const d = text[j];
        if (d === "\\") j++;
        else if (d === "[") inClass = true;
        else if (d === "]") inClass = false;
        else if (d === "/" && !inClass) break;
        j++;
      }
      const s = text.slice(i, j + 1);
      // A pattern names no module and calls nothing: blanked in both views.
      put("/" + blank(s.slice(1)), "/" + blank(s.slice(1)));
      i += s.length;
      last = "/r";
    } else {
      if (c === "{") {
        braces++;
      } else if (c === "}") {
        if (templates.length > 0 && templates[templates.length - 1] === braces) {
          // The end of a `${...}`: the template's text resumes.
          templates.pop();
          braces--;
          put(c, c);
          i++;
          resumeTemplate();
          continue;
        }
        braces--;
      }
      put(c, c);
      if (!/\s/.test(c)) last = c;
      i++;
    }
  }
  function resumeTemplate(): void {
    // Like readString("`") but starting inside the literal.
    let j = i;
    while (j < text.length) {
      const c = text[j];
      if (c === "\\") {
        j += 2;
        continue;
      }
      if (c === "`") {
        j++;
        break;
      }
      if (c === "$" && text[j + 1] === "{") break;
      j++;
    }
    const s = text.slice(i, j);
    put(s, blank(s));
    i = j;
    last = "`";
    openSubstitution();
  }
  return { code: code.split("\n"), bare: bare.split("\n") };
}

/** Offences in one file's text; `file` is only copied into the result. */
export function checkText(file: string, text: string): Offence[] {
  const { code, bare } = codeViews(text);
  const lines = text.split("\n");
  const out: Offence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const why = MODULE_RE.test(code[i])
      ? "imports a socket or process builtin"
      : LOADER_RE.test(code[i])
      ? "uses a runtime builtin loader"
      : GLOBAL_RE.test(bare[i])
      ? "uses a runtime global"
      : null;
    if (why) out.push({ file, line: i + 1, text: lines[i].trim(), why });
  }
  return out;
}

/** main.ts and every .ts file under lib/ except lib/runtime/. */
export function boundaryFiles(root: string): string[] {
  const out = [join(root, "main.ts")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (p !== join(root, "lib", "runtime")) walk(p);
      } else if (name.endsWith(".ts")) out.push(p);
    }
  };
  walk(join(root, "lib"));
  return out;
}

export function checkTree(root: string): Offence[] {
  return boundaryFiles(root).flatMap((f) => checkText(relative(root, f), readFileSync(f, "utf8")));
}

if (import.meta.main) {
  const root = resolve(process.argv[2] ?? join(import.meta.dirname!, ".."));
  const offences = checkTree(root);
  for (const o of offences) console.error(`${o.file}:${o.line}: ${o.text}  (${o.why})`);
  if (offences.length > 0) {
    console.error(
      `check_boundary: ${offences.length} line(s) outside lib/runtime/ reach the runtime directly; ` +
        "go through the Runtime interface (lib/runtime/types.ts)",
    );
    process.exit(1);
  }
  console.log(`check_boundary: ${boundaryFiles(root).length} files outside lib/runtime/, none reaches the runtime directly`);
}
