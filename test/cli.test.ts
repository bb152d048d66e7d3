/**
 * The command line's contract with slirp4netns's callers: every option
 * name in --help, and each bad flag's message and exit code. These run the
 * real binary but never reach a namespace: validation fails first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve, dirname } from 'node:path';
import { splitRunArgs, startupText } from '../src/cli/main.js';
import { settingsFrom } from '../src/cli/options.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/rxslirp.js');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help names every slirp4netns long option', () => {
  const r = run('--help');
  assert.equal(r.code, 0);
  for (const name of [
    '--configure',
    '--exit-fd',
    '--ready-fd',
    '--mtu',
    '--enable-ipv6',
    '--api-socket',
    '--cidr',
    '--disable-host-loopback',
    '--netns-type',
    '--userns-path',
    '--enable-sandbox',
    '--enable-seccomp',
    '--outbound-addr',
    '--outbound-addr6',
    '--disable-dns',
    '--macaddress',
    '--target-type',
    '--help',
    '--version',
  ]) {
    assert.ok(r.stdout.includes(name), `${name} missing from --help`);
  }
  assert.match(r.stdout, /^Usage: rxslirp \[OPTION\]\.\.\. PID\|PATH \[TAPNAME\]/);
});

test('-v prints the version', () => {
  const r = run('-v');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^rxslirp version \d+\.\d+\.\d+/);
});

const BAD: [string[], RegExp][] = [
  [['-m', '65522', '1'], /^MTU must be a positive integer \(< 65522\)$/m],
  [['--mtu=0', '1'], /^MTU must be a positive integer \(< 65522\)$/m],
  [['-m', 'abc', '1'], /^MTU must be a positive integer \(< 65522\)$/m],
  [['--cidr', 'foo', '1'], /^invalid CIDR: foo$/m],
  [['--cidr', '24', '1'], /^invalid CIDR: 24$/m],
  [['--cidr', '10.0.2.100/26', '1'], /^prefix length needs to be 1-25$/m],
  [
    ['--cidr', '10.0.2.100/24', '1'],
    /^CIDR needs to be a network address like 10\.0\.2\.0\/24, not like 10\.0\.2\.100\/24$/m,
  ],
  [
    ['-a', `/tmp/${'x'.repeat(103)}`, '1'],
    /^the specified API socket path is too long \(>= 108\)$/m,
  ],
  [['--macaddress', '02:00:00:00:00:01', '1'], /cannot be specified when --configure or -c/],
  [['-c', '--macaddress', 'zz', '1'], /^"zz" is an invalid MAC address\.$/m],
  [['-e', 'x', '1'], /^exit-fd must be a non-negative integer$/m],
  [['-r', '-1', '1'], /^ready-fd must be a non-negative integer$/m],
  [['--target-type', 'foo', '1'], /^--target-type must be either "netns" or "bess"$/m],
  [['--netns-type', 'foo', '1'], /^--netns-type must be either "pid" or "path"$/m],
  [['--netns-type=path', '/nonexistent/ns'], /^existing path expected when --netns-type=path/m],
  [
    ['--userns-path', '/nonexistent/userns', '1'],
    /^userns path doesn't exist: \/nonexistent\/userns$/m,
  ],
  [['--bogus', '1'], /^rxslirp: unrecognized option '--bogus'$/m],
  [['--mtu'], /^rxslirp: option '--mtu' requires an argument$/m],
  [['--cidr6', 'fd00::/64', '1'], /^--cidr6 cannot be specified when --enable-ipv6 or -6/m],
  [['-6', '--cidr6', 'zz', '1'], /^invalid CIDR6: zz$/m],
  [['-6', '--cidr6', 'fd00::/48', '1'], /^IPv6 prefix length needs to be 64$/m],
  [
    ['-6', '--cidr6', 'fd00::5/64', '1'],
    /^CIDR6 needs to be a network address like fd00::\/64, not/m,
  ],
  [['-6', '--cidr6', 'fe80::/64', '1'], /^CIDR6 needs to be a unicast prefix outside fe80::\/10/m],
  [['-6', '-m', '1200', '1'], /^MTU must be at least 1280 with IPv6$/m],
  [['--enable-sandbox', '1'], /^rxslirp: --enable-sandbox is not supported yet$/m],
  [['--enable-seccomp', '1'], /^rxslirp: --enable-seccomp is not supported yet$/m],
  [['--target-type=bess', '1'], /^rxslirp: --target-type=bess is not supported yet$/m],
  [
    ['--outbound-addr', 'no-such-iface0', '1'],
    /^outbound-addr has to be valid ipv4 address or interface name\.$/m,
  ],
  [
    ['--outbound-addr6', 'no-such-iface0', '1'],
    /^outbound-addr6 has to be valid ipv6 address or interface name\.$/m,
  ],
  [['abc'], /^PID must be a positive integer: abc$/m],
];

for (const [args, message] of BAD) {
  test(`bad flags: rxslirp ${args.join(' ')}`, () => {
    const r = run(...args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
  });
}

const NOT_WITH_RUN: [string[], string][] = [
  [['-r', '3'], '--ready-fd'],
  [['--ready-fd=3'], '--ready-fd'],
  [['-e', '4'], '--exit-fd'],
  [['--exit-fd', '4'], '--exit-fd'],
  [['--netns-type=path'], '--netns-type'],
  [['--userns-path', '/proc/self/ns/user'], '--userns-path'],
];

for (const [options, name] of NOT_WITH_RUN) {
  test(`run refuses attach-only options: rxslirp run ${options.join(' ')} -- true`, () => {
    const r = run('run', ...options, '--', 'true');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `rxslirp: ${name} is not supported with run\n`);
  });
}

test('no target prints the usage and exits 1', () => {
  const r = run();
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^Usage: rxslirp/);
});

test('the start-up text matches slirp4netns line for line', () => {
  const s = settingsFrom(
    { configure: true, macaddress: '02:00:00:00:00:01', apiSocket: '/run/rxslirp.sock' },
    ['123'],
  );
  assert.equal(
    startupText(s),
    [
      'Starting slirp',
      '* MTU:             1500',
      '* Network:         10.0.2.0',
      '* Netmask:         255.255.255.0',
      '* Gateway:         10.0.2.2',
      '* DNS:             10.0.2.3',
      '* DHCP begin:      10.0.2.15',
      '* DHCP end:        10.0.2.30',
      '* Recommended IP:  10.0.2.100',
      '* API Socket:      /run/rxslirp.sock',
      '* MAC address:     02:00:00:00:00:01',
      'WARNING: 127.0.0.1:* on the host is accessible as 10.0.2.2 (set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)',
      '',
    ].join('\n'),
  );
});

test('run mode splits our options from the command', () => {
  assert.deepEqual(splitRunArgs(['-m', '9000', '--', 'ping', '-c', '1']), {
    options: ['-m', '9000'],
    command: ['ping', '-c', '1'],
  });
  assert.deepEqual(splitRunArgs(['--cidr', '10.1.0.0/24', 'ping', '-c', '1']), {
    options: ['--cidr', '10.1.0.0/24'],
    command: ['ping', '-c', '1'],
  });
});
