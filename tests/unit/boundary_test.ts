// tools/check_boundary.ts on fixture text: what it reports outside
// lib/runtime/ (socket and process builtins, their lazy loaders, Deno.* and
// Bun.*), and what it leaves alone (comments, strings, other builtins,
// look-alike names), with FILE:LINE.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { boundaryFiles, checkText, checkTree, codeViews } from "../../tools/check_boundary.ts";

const lines = (text: string) => checkText("lib/x.ts", text).map((o) => `${o.file}:${o.line}: ${o.text}`);

describe("check_boundary", () => {
  test("imports of socket and process builtins, in every form", () => {
    const text = [
      `import { connect } from "node:net";`,
      `import type { Socket } from 'node:dgram';`,
      `import * as cp from "node:child_process";`,
      `type Tls = typeof import("node:tls");`,
      `const s = process.getBuiltinModule("node:stream");`,
      `import net from "net";`,
      `const d = require("dgram");`,
      `export { Duplex } from "node:stream/promises";`,
      `import "node:tls";`,
    ].join("\n");
    assert.deepEqual(lines(text).map((l) => l.replace(/: .*/, "")), [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `lib/x.ts:${n}`));
  });

  test("runtime globals and the lazy loaders", () => {
    const text = [
      `const l = Deno.listen({ port: 0 });`,
      `Bun.gc(true);`,
      `const v = (globalThis as { Deno?: unknown }).Deno;`,
      `const b = globalThis.Bun?.version;`,
      `const sock = nodeDgram().createSocket("udp4");`,
      `import { nodeNet } from "../runtime/builtins.ts";`,
      "const t = `pid ${Deno.pid}`;",
      `const c = process.getBuiltinModule("node:crypto");`,
    ].join("\n");
    assert.deepEqual(lines(text), [
      "lib/x.ts:1: const l = Deno.listen({ port: 0 });",
      "lib/x.ts:2: Bun.gc(true);",
      "lib/x.ts:3: const v = (globalThis as { Deno?: unknown }).Deno;",
      "lib/x.ts:4: const b = globalThis.Bun?.version;",
      `lib/x.ts:5: const sock = nodeDgram().createSocket("udp4");`,
      `lib/x.ts:6: import { nodeNet } from "../runtime/builtins.ts";`,
      "lib/x.ts:7: const t = `pid ${Deno.pid}`;",
      `lib/x.ts:8: const c = process.getBuiltinModule("node:crypto");`,
    ]);
  });

  test("comments, strings and look-alikes are not offences", () => {
    const text = [
      `// Deno's node:net starves under load; Bun.listen differs.`,
      `/* import { connect } from "node:net"; */`,
      `/**`,
      ` * Deno.listen and nodeNet() are the adapters' business.`,
      ` */`,
      `const msg = "Deno.exit is not called here";`,
      "const t = `Bun.serve ${name} node:net`;",
      `import { nodeCrypto } from "../runtime/builtins.ts";`,
      `import { readFileSync } from "node:fs";`,
      `import { hostname } from "node:os";`,
      `const internet = network.net;`,
      `const re = /Deno\\.listen|"node:net"/;`,
      `const myNodeNet = 1; const x = a.nodeNet;`,
      `interface G { Deno?: unknown; Bun?: unknown }`,
      `const url = "http://example.com"; const d = Deno2.x;`,
    ].join("\n");
    assert.deepEqual(lines(text), []);
  });

  test("code after a comment or a string on the same line is still read", () => {
    const text = [
      `const a = "//"; Deno.exit(1);`,
      `/* x */ import { connect } from "node:net";`,
      "const t = `a ${`b ${1}`}`; Bun.gc();",
      `const r = /"/; Deno.pid;`,
    ].join("\n");
    assert.deepEqual(lines(text).map((l) => l.slice(0, 10)), ["lib/x.ts:1", "lib/x.ts:2", "lib/x.ts:3", "lib/x.ts:4"]);
  });

  test("views keep every line and column", () => {
    const text = "a /* b\nc */ d // e\n`f ${g} h`\n'i'";
    const { code, bare } = codeViews(text);
    assert.deepEqual(code, ["a     ", "     d     ", "`f ${g} h`", "'i'"]);
    assert.deepEqual(bare, ["a     ", "     d     ", "`  ${g}   ", "'  "]);
  });

  test("the tree: main.ts and lib/ outside lib/runtime/, and it is clean", () => {
    const root = join(import.meta.dirname!, "..", "..");
    const files = boundaryFiles(root).map((f) => f.slice(root.length + 1));
    assert.ok(files.includes("main.ts"));
    assert.ok(files.includes("lib/resolver/resolver.ts"));
    assert.ok(!files.some((f) => f.startsWith("lib/runtime/")));
    assert.deepEqual(checkTree(root), []);
  });
});
