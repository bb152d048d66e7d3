/**
 * `--faults=SPEC`, the rxslirp-only option that puts the fault-injection
 * operator on both sides of the stack: how the spec parses, what it
 * refuses, and that run mode keeps it among our options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRunArgs } from '../src/cli/main.js';
import { HELP, UsageError, parseFaults, settingsFrom } from '../src/cli/options.js';

test('--faults parses into the operator options', () => {
  const s = settingsFrom({ faults: 'drop=0.02,reorder=0.02,seed=7' }, [], false);
  assert.deepEqual(s.faults, { drop: 0.02, reorder: 0.02, seed: 7 });
  assert.deepEqual(parseFaults('duplicate=1,delay=2.5'), { duplicate: 1, delayMs: 2.5 });
  assert.equal(settingsFrom({}, [], false).faults, undefined);
});

test('--faults refuses unknown keys, fractions out of range and bad numbers', () => {
  for (const bad of [
    'loss=0.1',
    'drop=2',
    'drop=-0.1',
    'drop=',
    'drop',
    'seed=1.5',
    'delay=x',
    'drop=0.1=2',
    '',
  ]) {
    assert.throws(() => parseFaults(bad), UsageError, bad);
  }
});

test('--faults is in --help and takes a value in run mode', () => {
  assert.match(HELP, /--faults=SPEC/);
  const split = splitRunArgs(['--faults', 'drop=0.5', '--', 'true']);
  assert.deepEqual(split, { options: ['--faults', 'drop=0.5'], command: ['true'] });
});
