/**
 * `--dns-upstream=ADDR[:PORT]` and `--resolv-conf=PATH`, the rxslirp-only
 * options that say where the DNS forwarder at network+3 sends queries:
 * parsed and checked up front, listed in --help, kept among our options
 * in run mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRunArgs } from '../src/cli/main.js';
import { HELP, UsageError, parseArgs, settingsFrom } from '../src/cli/options.js';

test('--dns-upstream and --resolv-conf reach the settings', () => {
  const { raw } = parseArgs(['--dns-upstream=198.51.100.1:5353', '--resolv-conf', '/tmp/r']);
  const s = settingsFrom(raw, [], false);
  assert.equal(s.dnsUpstream, '198.51.100.1:5353');
  assert.equal(s.resolvConf, '/tmp/r');
  assert.equal(
    settingsFrom({ dnsUpstream: '[2001:db8::1]:53' }, [], false).dnsUpstream,
    '[2001:db8::1]:53',
  );
  const none = settingsFrom({}, [], false);
  assert.equal(none.dnsUpstream, undefined);
  assert.equal(none.resolvConf, undefined);
});

test('a --dns-upstream that is not an address is refused with the text named', () => {
  for (const bad of ['dns.example', '198.51.100.1:0', '198.51.100.1:99999', '']) {
    assert.throws(
      () => settingsFrom({ dnsUpstream: bad }, [], false),
      (e: unknown) => e instanceof UsageError && e.message.startsWith('--dns-upstream: '),
      bad,
    );
  }
});

test('both are in --help and take a value in run mode', () => {
  assert.match(HELP, /--dns-upstream=ADDR\[:PORT\]/);
  assert.match(HELP, /--resolv-conf=PATH/);
  const split = splitRunArgs(['--dns-upstream', '198.51.100.1', '--resolv-conf', 'x', 'dig']);
  assert.deepEqual(split, {
    options: ['--dns-upstream', '198.51.100.1', '--resolv-conf', 'x'],
    command: ['dig'],
  });
});
