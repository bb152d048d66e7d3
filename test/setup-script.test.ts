/**
 * scripts/setup.sh stops before installing anything when Node.js is
 * missing or older than 20. The script runs with PATH holding only a fake
 * `node`, so that even a broken check finds no apt-get or npm to run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SETUP = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/setup.sh');

/** Runs setup.sh with PATH = a directory holding `node` printing `version` (none if undefined). */
function setupWithNode(version: string | undefined): { code: number | null; stderr: string } {
  const bin = mkdtempSync(join(tmpdir(), 'rxslirp-setup-'));
  try {
    if (version !== undefined) {
      writeFileSync(join(bin, 'node'), `#!/bin/sh\necho ${version}\n`);
      chmodSync(join(bin, 'node'), 0o755);
    }
    const r = spawnSync('/bin/bash', [SETUP], {
      env: { PATH: bin },
      encoding: 'utf8',
      timeout: 10_000,
    });
    return { code: r.status, stderr: r.stderr };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

test('setup.sh stops when node is missing', () => {
  const r = setupWithNode(undefined);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^setup\.sh: rxslirp needs Node\.js 20 or newer .*node was not found\.$/m);
});

test('setup.sh stops when node is older than 20', () => {
  const r = setupWithNode('18.19.0');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /needs Node\.js 20 or newer .*found version 18\.19\.0\.$/m);
  assert.match(r.stderr, /Debian 12's nodejs package is version 18/);
});
