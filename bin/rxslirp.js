#!/usr/bin/env node
// The rxslirp command. The code lives in dist/ (built by `npm ci`).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; the timer only guards against a leaked handle.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err) => {
    process.stderr.write(`rxslirp: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
