/**
 * rxslirp as its real users run it: an unprivileged user (ping and TCP), with
 * /dev/net/tun at mode 0666 as distributions ship it. The test makes a
 * system user `rxslirp-test`, gives it a copy of the built package it can
 * read, and runs `rxslirp run -- ping` as that user inside a private
 * network namespace. It sets /dev/net/tun to 0666 for the duration and
 * puts the old mode back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, rmSync, statSync, chownSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { assertOk, assertRoot, inSandbox, REPO } from './harness.js';

const USER = 'rxslirp-test';

function ensureUser(): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  }
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  return { uid, gid };
}

test('an unprivileged user pings the gateway and fetches from the host through rxslirp run', async () => {
  assertRoot();
  const { uid, gid } = ensureUser();
  const copy = mkdtempSync('/tmp/rxslirp-rootless-');
  const oldMode = statSync('/dev/net/tun').mode & 0o777;
  try {
    for (const part of ['package.json', 'bin', 'dist', 'build/Release', 'node_modules']) {
      cpSync(join(REPO, part), join(copy, part), { recursive: true });
    }
    chmodSync(copy, 0o755);
    chownSync(copy, uid, gid);
    chmodSync('/dev/net/tun', 0o666);
    const r = await inSandbox(`
mkdir -p /tmp/www.$$ && echo "served to the guest" > /tmp/www.$$/index.txt
python3 -m http.server 8088 --bind 127.0.0.1 --directory /tmp/www.$$ >/dev/null 2>&1 &
for _ in $(seq 100); do ss -Hltn "sport = :8088" | grep -q . && break; sleep 0.05; done
setpriv --reuid=${uid} --regid=${gid} --clear-groups -- sh -c '
  echo "outer uid $(id -u)"
  node ${copy}/bin/rxslirp.js run -- sh -c "echo inner uid \\$(id -u); ping -c 3 -W 2 10.0.2.2; \\
    curl -sS --max-time 10 http://10.0.2.2:8088/index.txt"
'
`);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`^outer uid ${uid}$`, 'm'), 'rxslirp ran unprivileged');
    assert.match(r.stdout, /^inner uid 0$/m, 'the command ran as root of its own namespace');
    assert.match(r.stdout, /3 packets transmitted, 3 received/);
    assert.match(r.stdout, /^served to the guest$/m, 'TCP through the NAT as an unprivileged user');
  } finally {
    chmodSync('/dev/net/tun', oldMode);
    rmSync(copy, { recursive: true, force: true });
  }
});
