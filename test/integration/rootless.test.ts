/**
 * rxslirp as its real users run it: an unprivileged user (ping and TCP), with
 * /dev/net/tun at mode 0666 as distributions ship it. The tests make a
 * system user `rxslirp-test`, give it a copy of the built package it can
 * read, and, as that user inside a private network namespace, run
 * `rxslirp run -- ping`, and attach by PID to a namespace the user made
 * (as rootlesskit and podman do). They set /dev/net/tun to 0666 for the
 * duration and put the old mode back.
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

/**
 * Runs `body` with a copy of the built package that USER can read and
 * /dev/net/tun at mode 0666, then puts the old mode back.
 */
async function asUnprivileged(
  body: (copy: string, uid: number, gid: number) => Promise<void>,
): Promise<void> {
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
    await body(copy, uid, gid);
  } finally {
    chmodSync('/dev/net/tun', oldMode);
    rmSync(copy, { recursive: true, force: true });
  }
}

test('an unprivileged user pings the gateway and fetches from the host through rxslirp run', async () => {
  await asUnprivileged(async (copy, uid, gid) => {
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
  });
});

// The way rootlesskit and podman use slirp4netns: the unprivileged user
// makes the user+net namespace, then attaches by PID with -c and --ready-fd.
test('an unprivileged user attaches by PID to its own namespace and pings the gateway', async () => {
  await asUnprivileged(async (copy, uid, gid) => {
    const r = await inSandbox(`
setpriv --reuid=${uid} --regid=${gid} --clear-groups -- bash -c '
  set -euo pipefail
  echo "outer uid $(id -u)"
  unshare --user --map-root-user --net sleep 60 &
  pid=$!
  for _ in $(seq 100); do
    [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.05
  done
  mkfifo ${copy}/ready
  node ${copy}/bin/rxslirp.js -c -r 3 "$pid" tap0 3>${copy}/ready >/dev/null &
  slirp=$!
  read -r -n1 -t 20 b < ${copy}/ready
  echo "ready=$b"
  nsenter --target "$pid" --user --net --preserve-credentials -- ping -c 3 -W 2 10.0.2.2
  kill "$slirp" "$pid"
'
`);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`^outer uid ${uid}$`, 'm'), 'rxslirp ran unprivileged');
    assert.match(r.stdout, /^ready=1$/m);
    assert.match(r.stdout, /3 packets transmitted, 3 received/);
  });
});
