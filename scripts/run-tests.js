#!/usr/bin/env node
// Runs the compiled tests with node's test runner. `--unit` leaves out
// test/integration (which needs root, namespaces and Debian packages).
// FC_NUM_RUNS=N raises fast-check's run count for the property tests.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const unitOnly = process.argv.includes('--unit');
const root = 'dist/test';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return unitOnly && name === 'integration' ? [] : walk(p);
    return p.endsWith('.test.js') ? [p] : [];
  });
}

const files = walk(root).sort();
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
