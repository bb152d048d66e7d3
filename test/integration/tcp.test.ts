/**
 * TCP NAT against the Linux kernel as peer: programs in a namespace that
 * `rxslirp run` makes reach servers on the host's loopback through the
 * gateway 10.0.2.2. Each test runs in its own private namespace (the
 * "host" side is that sandbox, whose servers bind 127.0.0.1 only), with
 * its files on a tmpfs that disappears with it.
 *
 * Bulk transfers are checked by SHA-256 end to end, many connections each
 * by its own payload, iperf3 by its exit status and the bytes it received
 * (never by its speed); refusals and unreachability by the errno the guest
 * sees; and the same bulk transfers again through `--faults`, which drops
 * and reorders 2% of the frames in each direction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { inSandbox, assertOk, REPO } from './harness.js';

const TOOLS = resolve(REPO, 'dist/test/integration/tcp-tools.js');
const MiB = 1024 * 1024;

/**
 * Shell prelude: $W is a private tmpfs, every background job is killed at
 * exit, `waitlisten PORT` waits (bounded) until something listens there.
 */
const PRELUDE = `
W=$(mktemp -d /tmp/rxslirp-tcp.XXXXXX)
mount -t tmpfs -o size=512m tmpfs "$W"
cleanup() { local rc=$?; kill $(jobs -p) 2>/dev/null || true; umount -l "$W"; rmdir "$W"; exit $rc; }
trap cleanup EXIT
waitlisten() {
  for _ in $(seq 200); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2; return 1
}
tools() { node "$TOOLS" "$@"; }
`;

function sandbox(script: string, timeoutMs = 60_000): ReturnType<typeof inSandbox> {
  return inSandbox(PRELUDE + script, { timeoutMs, env: { TOOLS } });
}

/** The `faults ingress|egress:` lines rxslirp logs at info level when it exits. */
function faultStats(stderr: string): { side: string; dropped: number; reordered: number }[] {
  return [...stderr.matchAll(/faults (\w+): .*?dropped=(\d+) .*?reordered=(\d+)/g)].map((m) => ({
    side: m[1]!,
    dropped: Number(m[2]),
    reordered: Number(m[3]),
  }));
}

/** 100 MiB down with curl (GET) and up (PUT), each checked by SHA-256. */
function bulkScript(rxslirpOptions: string): string {
  return `
head -c ${100 * MiB} /dev/urandom > "$W/blob"
want=$(sha256sum < "$W/blob" | cut -d' ' -f1)
tools http-server 8080 "$W/blob" > "$W/server.log" &
waitlisten 8080
start=$(date +%s.%N)
"$RXSLIRP" run ${rxslirpOptions} -- sh -c 'curl -sS --max-time 100 http://10.0.2.2:8080/blob | sha256sum' > "$W/down"
mid=$(date +%s.%N)
"$RXSLIRP" run ${rxslirpOptions} -- curl -sS --max-time 100 -T "$W/blob" http://10.0.2.2:8080/upload > "$W/up"
end=$(date +%s.%N)
echo "want $want"
echo "down $(cut -d' ' -f1 "$W/down") in $(awk "BEGIN { print $mid - $start }") s"
echo "up $(cat "$W/up") in $(awk "BEGIN { print $end - $mid }") s"
`;
}

function assertBulk(stdout: string, diagnostic: (message: string) => void): void {
  const want = /^want ([0-9a-f]{64})$/m.exec(stdout)?.[1];
  assert.ok(want, stdout);
  assert.match(stdout, new RegExp(`^down ${want} in`, 'm'), 'the GET arrived byte for byte');
  assert.match(stdout, new RegExp(`^up ${want} ${100 * MiB} in`, 'm'), 'the PUT arrived whole');
  for (const m of stdout.matchAll(/^(down|up) .* in ([\d.]+) s$/gm))
    diagnostic(`${m[1]}: ${m[2]} s`);
}

test('curl: 100 MiB down from and 100 MiB up to a loopback server, SHA-256 equal', async (t) => {
  const r = await sandbox(bulkScript(''));
  assertOk(r);
  assertBulk(r.stdout, (m) => t.diagnostic(m));
});

test('the same 100 MiB both ways with 2% of frames dropped and 2% reordered each way', async (t) => {
  const r = await sandbox(
    `export RXSLIRP_LOG=info\n${bulkScript('--faults=drop=0.02,reorder=0.02,seed=7')}`,
    150_000,
  );
  assertOk(r);
  assertBulk(r.stdout, (m) => t.diagnostic(m));
  const stats = faultStats(r.stderr);
  assert.equal(stats.length, 4, `two runs, two directions each:\n${r.stderr}`);
  for (const s of stats) {
    assert.ok(s.dropped > 0 && s.reordered > 0, `faults happened ${s.side}: ${r.stderr}`);
  }
});

test('200 concurrent connections, each with its own payload echoed back intact', async () => {
  const r = await sandbox(`
tools stream-echo-server 7000 > "$W/server.log" &
waitlisten 7000
"$RXSLIRP" run -- node "$TOOLS" many-clients 10.0.2.2 7000 200
`);
  assertOk(r);
  assert.match(r.stdout, /many-clients: 200\/200 verified/);
});

test('guest half-close: after shutting its write side the guest still gets the reply', async () => {
  const r = await sandbox(`
tools eof-server 7001 digest > "$W/server.log" &
waitlisten 7001
"$RXSLIRP" run -- node "$TOOLS" half-close 10.0.2.2 7001 ${4 * MiB} digest
`);
  assertOk(r);
  assert.match(r.stdout, /half-close: sent 4194304, received \d+ after our FIN: ok/);
});

test('guest half-close, then the host echoes 4 MiB and closes at once: nothing is lost', async () => {
  // The host server closes its socket as soon as its reply is written,
  // long before the guest has acknowledged it: the flow must outlive the
  // host socket until the guest has every byte and the FIN.
  const r = await sandbox(`
tools eof-server 7003 echo > "$W/server.log" &
waitlisten 7003
for i in 1 2 3; do
  RXSLIRP_LOG=info "$RXSLIRP" run -- node "$TOOLS" half-close 10.0.2.2 7003 ${4 * MiB} echo
done
`);
  assertOk(r);
  assert.equal(
    r.stdout.match(/half-close: sent 4194304, received \d+ after our FIN: ok/g)?.length,
    3,
    r.stdout,
  );
  assert.doesNotMatch(r.stderr, /tcp\.freed\.aborted|tcp\.no-flow/);
});

/** What one iperf3 client run reports (-J): bytes its receiver got, or its error. */
function iperfReceived(stdout: string, name: string): number {
  const m = new RegExp(`^--- ${name} exit (\\d+)\\n([\\s\\S]*?)^--- end`, 'm').exec(stdout);
  assert.ok(m, `no ${name} section in:\n${stdout}`);
  assert.equal(m[1], '0', `iperf3 ${name} exited ${m[1]}:\n${m[2]}`);
  const report = JSON.parse(m[2]!) as {
    error?: string;
    end?: { sum_received?: { bytes?: number } };
  };
  assert.equal(report.error, undefined, `iperf3 ${name}: ${report.error}`);
  return report.end?.sum_received?.bytes ?? 0;
}

test('iperf3: 2 s up and 2 s down (-R) against a server on loopback', async (t) => {
  const r = await sandbox(
    `
iperf3 -s -B 127.0.0.1 -p 5201 > "$W/server.log" 2>&1 &
waitlisten 5201
"$RXSLIRP" run -- sh -c '
  for dir in up down; do
    flag=; [ "$dir" = down ] && flag=-R
    rc=0
    timeout 30 iperf3 -c 10.0.2.2 -p 5201 -t 2 $flag -J > "$0/$dir.json" || rc=$?
    echo "--- $dir exit $rc"; cat "$0/$dir.json"; echo "--- end"
  done
' "$W"
`,
    90_000,
  );
  assertOk(r);
  for (const dir of ['up', 'down']) {
    const bytes = iperfReceived(r.stdout, dir);
    assert.ok(bytes > 0, `iperf3 ${dir} received ${bytes} bytes`);
    t.diagnostic(`${dir}: ${bytes} bytes in 2 s`);
  }
});

test('a closed port: the guest connect fails at once with ECONNREFUSED', async () => {
  const r = await sandbox(`
"$RXSLIRP" run -- node "$TOOLS" connect 10.0.2.2 7999
`);
  assertOk(r);
  const m = /error (\w+) after ([\d.]+) ms/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.equal(m[1], 'ECONNREFUSED');
  assert.ok(Number(m[2]) < 500, `refused after ${m[2]} ms`);
});

test('--disable-host-loopback: connecting to the gateway gives "Network is unreachable"', async () => {
  const r = await sandbox(`
tools eof-server 7002 digest > "$W/server.log" &
waitlisten 7002
"$RXSLIRP" run --disable-host-loopback -- node "$TOOLS" connect 10.0.2.2 7002
"$RXSLIRP" run --disable-host-loopback -- bash -c 'echo hi > /dev/tcp/10.0.2.2/7002' 2>&1 || true
"$RXSLIRP" run --disable-host-loopback -- ping -c 1 -W 2 10.0.2.2
`);
  assertOk(r);
  assert.match(r.stdout, /error ENETUNREACH after/);
  assert.match(r.stdout, /Network is unreachable/);
  assert.match(r.stdout, /1 packets transmitted, 1 received/, 'ping to the gateway still works');
});

test('wget fetches from python3 http.server on loopback, SHA-256 equal', async () => {
  const r = await sandbox(`
head -c ${20 * MiB} /dev/urandom > "$W/file"
sha256sum < "$W/file"
python3 -m http.server 8081 --bind 127.0.0.1 --directory "$W" > "$W/server.log" 2>&1 &
waitlisten 8081
"$RXSLIRP" run -- wget -q -T 30 -O - http://10.0.2.2:8081/file | sha256sum
`);
  assertOk(r);
  const [want, got] = r.stdout.trim().split('\n');
  assert.ok(want && want === got, r.stdout);
});

test('git clone over dumb HTTP from a bare repository on loopback', async () => {
  const r = await sandbox(`
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git init -q -b main "$W/src"
for i in $(seq 50); do head -c 20000 /dev/urandom | base64 > "$W/src/file$i"; done
git -C "$W/src" add .
git -C "$W/src" -c user.name=t -c user.email=t@example.com commit -qm first
git clone -q --bare "$W/src" "$W/served/repo.git"
git -C "$W/served/repo.git" update-server-info
python3 -m http.server 8082 --bind 127.0.0.1 --directory "$W/served" > "$W/server.log" 2>&1 &
waitlisten 8082
"$RXSLIRP" run -- git clone -q http://10.0.2.2:8082/repo.git "$W/clone"
echo "src $(git -C "$W/src" rev-parse HEAD)"
echo "clone $(git -C "$W/clone" rev-parse HEAD)"
diff -r --exclude=.git "$W/src" "$W/clone" && echo "trees equal"
`);
  assertOk(r);
  const src = /^src ([0-9a-f]{40})$/m.exec(r.stdout)?.[1];
  assert.ok(src, r.stdout);
  assert.match(r.stdout, new RegExp(`^clone ${src}$`, 'm'));
  assert.match(r.stdout, /trees equal/);
});
