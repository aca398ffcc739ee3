// Minimal glob(3) for `include` (directives.md §1.2): `*`, `?` and `[...]`
// in any path component, matches sorted, leading dots only matched by an
// explicit dot, no match is not an error. Only files are returned.

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export function hasGlobChars(s: string): boolean {
  return /[*?[]/.test(s);
}

/** Converts one path component pattern into an anchored RegExp. */
export function componentRegExp(pattern: string): RegExp {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") {
      re += "[^/]*";
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      let negate = false;
      if (body[0] === "!" || body[0] === "^") {
        negate = true;
        body = body.slice(1);
      }
      body = body.replace(/[\\\]^]/g, (m) => "\\" + m);
      re += `[${negate ? "^" : ""}${body}]`;
      i = close;
    } else if (c === "\\" && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]);
    } else {
      re += escapeRe(c);
    }
  }
  return new RegExp(re + "$");
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? "\\" + c : c;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return !statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Expands an absolute glob pattern; returns matching files in sorted order. */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split("/");
  let bases = [parts[0] === "" ? "/" : parts[0]];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i];
    if (part === "") continue;
    const lastPart = i === parts.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!hasGlobChars(part)) {
        next.push(join(base, part));
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(base);
      } catch {
        continue;
      }
      const re = componentRegExp(part);
      for (const name of names.sort()) {
        if (name.startsWith(".") && !part.startsWith(".")) continue;
        if (re.test(name)) next.push(join(base, name));
      }
    }
    bases = lastPart ? next : next.filter(isDir);
  }
  return bases.filter(isFile).sort();
}
