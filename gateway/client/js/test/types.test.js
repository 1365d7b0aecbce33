// The shipped TypeScript declarations compile, and describe the API the
// way test/types/usage.ts uses it (typescript is a dev dependency).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

test("index.d.ts type-checks a typical program (tsc --strict)", async () => {
  const tsc = require.resolve("typescript/bin/tsc");
  const project = fileURLToPath(new URL("./types/tsconfig.json", import.meta.url));
  const out = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, "-p", project], (err, stdout, stderr) => resolve({ err, text: stdout + stderr }));
  });
  assert.equal(out.err, null, `tsc found errors:\n${out.text}`);
});
