/**
 * The control socket (`--api-socket`) against real sockets: rxslirp
 * attaches by PID to a namespace the test makes, with `-c -a $SOCK`, and a
 * small node client talks JSON to it. A TCP forward from the sandbox's
 * 127.0.0.1:8080 to a server in the guest carries a 10 MB download and
 * upload (checked by SHA-256) and a half-close; `list_hostfwd` shows the
 * entry in both forms; after `remove_hostfwd` the port refuses; a forward
 * to a guest port where nothing listens resets the host connection; a UDP
 * forward echoes datagrams (one of 4000 bytes, fragmented on the way) from
 * two host clients through a server in the guest and frees its port when
 * removed; and bad requests get slirp4netns's error texts.
 *
 * Everything runs inside the sandbox's private network namespace: the
 * "host" is its loopback, the guest a namespace inside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { inSandbox, assertOk, REPO, SHELL_HELPERS } from './harness.js';

const TOOLS = resolve(REPO, 'dist/test/integration/tcp-tools.js');
const UDP_TOOLS = resolve(REPO, 'dist/test/integration/udp-tools.js');
const MB = 10 * 1000 * 1000;

/**
 * Shell prelude: a guest namespace $G with rxslirp attached (`-c -a`),
 * `api JSON` prints the reply to one request (bounded to 10 s), `tools`
 * runs tcp-tools, `gtools` runs them in the guest bound to 10.0.2.100.
 */
const PRELUDE = `${SHELL_HELPERS}
W=$(mktemp -d /tmp/rxslirp-api.XXXXXX)
cleanup() { local rc=$?; kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"; exit $rc; }
trap cleanup EXIT
SOCK=$W/api.sock
api() {
  node -e '
    const c = require("net").connect(process.argv[1]);
    const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 10000);
    let d = "";
    c.on("data", (x) => (d += x));
    c.on("end", () => { clearTimeout(t); console.log(d); });
    c.on("error", (e) => { console.log("ERROR " + e.code); process.exit(1); });
    c.end(process.argv[2]);
  ' "$SOCK" "$1"
}
tools() { node "$TOOLS" "$@"; }
utools() { node "$UDP_TOOLS" "$@"; }
gtools() { innsx "$G" env TCP_TOOLS_BIND=10.0.2.100 node "$TOOLS" "$@"; }
waitguest() {
  for _ in $(seq 200); do
    innsx "$G" ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "nothing listens on guest port $1" >&2; return 1
}
newns G
mkfifo "$W/ready"
exec 5<>"$W/ready"
"$RXSLIRP" -c -a "$SOCK" -r 5 "$G" tap0 > "$W/out" 2> "$W/err" &
SLIRP=$!
waitready "$W/ready"
`;

function sandbox(script: string): ReturnType<typeof inSandbox> {
  return inSandbox(PRELUDE + script, { timeoutMs: 90_000, env: { TOOLS, UDP_TOOLS } });
}

function lines(stdout: string, tag: string): string[] {
  return [...stdout.matchAll(new RegExp(`^${tag} (.*)$`, 'gm'))].map((m) => m[1]!);
}

const ADD =
  '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1",' +
  '"host_port":8080,"guest_port":80}}';

test('a TCP forward carries 10 MB each way, half-close, and goes away when removed', async () => {
  const r = await sandbox(`
grep -qx '\\* API Socket: *'"$SOCK" "$W/out"
[ -S "$SOCK" ]
head -c ${MB} /dev/urandom > "$W/blob"
echo "want $(sha256sum < "$W/blob" | cut -d' ' -f1)"
gtools http-server 80 "$W/blob" > /dev/null &
gtools eof-server 81 echo > /dev/null &
waitguest 80
waitguest 81
echo "add $(api '${ADD}')"
echo "add2 $(api '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8081,"guest_addr":"10.0.2.100","guest_port":81}}')"
echo "list $(api '{"execute":"list_hostfwd"}')"
echo "down $(curl -sS --max-time 30 http://127.0.0.1:8080/blob | sha256sum | cut -d' ' -f1)"
echo "up $(curl -sS --max-time 30 -T "$W/blob" http://127.0.0.1:8080/upload)"
echo "half $(tools half-close 127.0.0.1 8081 1000000 echo)"
echo "remove $(api '{"execute":"remove_hostfwd","arguments":{"id":1}}')"
set +e
curl -sS --max-time 5 -o /dev/null http://127.0.0.1:8080/blob 2> /dev/null
echo "after-remove curl=$?"
set -e
echo "add3 $(api '${ADD}')"
echo "list2 $(api '{"execute":"list_hostfwd"}')"
kill "$SLIRP"; wait "$SLIRP" || true
[ ! -e "$SOCK" ] && echo "socket removed"
`);
  assertOk(r);
  const out = r.stdout;
  const want = lines(out, 'want')[0];
  assert.ok(want, out);
  assert.deepEqual(lines(out, 'add'), ['{"return":{"id":1}}']);
  assert.deepEqual(lines(out, 'add2'), ['{"return":{"id":2}}']);
  const entry = (id: number, port: number, guestPort: number): object => ({
    id,
    proto: 'tcp',
    host_addr: '127.0.0.1',
    host_port: port,
    guest_addr: '10.0.2.100',
    guest_port: guestPort,
  });
  const list = JSON.parse(lines(out, 'list')[0]!) as unknown;
  const both = [entry(1, 8080, 80), entry(2, 8081, 81)];
  assert.deepEqual(list, { return: { entries: both }, entries: both });
  assert.deepEqual(lines(out, 'down'), [want], 'the download arrived byte for byte');
  assert.deepEqual(lines(out, 'up'), [`${want} ${MB}`], 'the upload arrived whole');
  assert.match(
    lines(out, 'half')[0] ?? '',
    /^half-close: sent 1000000, received \d+ after our FIN: ok$/,
    out,
  );
  assert.deepEqual(lines(out, 'remove'), ['{"return":{}}']);
  assert.deepEqual(lines(out, 'after-remove'), ['curl=7'], 'the port refuses once removed');
  assert.deepEqual(lines(out, 'add3'), ['{"return":{"id":3}}'], 'ids are never reused');
  const list2 = JSON.parse(lines(out, 'list2')[0]!) as { entries: { id: number }[] };
  assert.deepEqual(
    list2.entries.map((e) => e.id),
    [2, 3],
  );
  assert.match(out, /^socket removed$/m);
});

test('a UDP forward echoes datagrams through the guest, 4000 bytes too, and frees its port', async () => {
  const r = await sandbox(`
innsx "$G" node "$UDP_TOOLS" echo-server 0.0.0.0 7007 > "$W/guest-echo" &
for _ in $(seq 200); do grep -q listening "$W/guest-echo" && break; sleep 0.05; done
echo "add $(api '{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"127.0.0.1","host_port":9007,"guest_port":7007}}')"
echo "list $(api '{"execute":"list_hostfwd"}')"
utools echo-client 127.0.0.1 9007 100 3 | sed 's/^/small /'
utools echo-client 127.0.0.1 9007 4000 2 | sed 's/^/big /'
echo "remove $(api '{"execute":"remove_hostfwd","arguments":{"id":1}}')"
node -e '
  const s = require("dgram").createSocket("udp4");
  s.on("error", (e) => { console.log("port " + e.code); process.exit(0); });
  s.bind(9007, "127.0.0.1", () => { console.log("port free"); s.close(); });
'
`);
  assertOk(r);
  const out = r.stdout;
  assert.deepEqual(lines(out, 'add'), ['{"return":{"id":1}}']);
  const entry = {
    id: 1,
    proto: 'udp',
    host_addr: '127.0.0.1',
    host_port: 9007,
    guest_addr: '10.0.2.100',
    guest_port: 7007,
  };
  assert.deepEqual(JSON.parse(lines(out, 'list')[0]!), {
    return: { entries: [entry] },
    entries: [entry],
  });
  assert.deepEqual(lines(out, 'small'), ['echo 1 100', 'echo 2 100', 'echo 3 100'], out);
  assert.deepEqual(lines(out, 'big'), ['echo 1 4000', 'echo 2 4000'], out);
  assert.deepEqual(lines(out, 'remove'), ['{"return":{}}']);
  assert.deepEqual(lines(out, 'port'), ['free'], 'the host port is free once removed');
});

test('forwards show the guest who connected: the client itself, or the gateway for loopback', async () => {
  const r = await sandbox(`
# A client address that is not loopback, on this sandbox's "host".
ip addr add 198.51.100.1/32 dev lo
ip addr add 198.51.100.2/32 dev lo
echo "add $(api '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8081,"guest_port":9000}}')"
echo "add $(api '{"execute":"add_hostfwd","arguments":{"proto":"udp","host_port":8082,"guest_port":9001}}')"
innsx "$G" node -e '
  require("net").createServer((c) => c.end(c.remoteAddress + " " + c.remotePort + "\\n"))
    .listen(9000, "10.0.2.100", () => console.log("listening"));
  const u = require("dgram").createSocket("udp4");
  u.on("message", (m, r) => u.send(r.address + " " + r.port, r.port, r.address));
  u.bind(9001, "10.0.2.100");' > "$W/guest-server" &
waitguest 9000
ask() {
  node -e '
    const [host, localAddress, localPort] = process.argv.slice(1);
    const c = require("net").connect({ port: 8081, host, localAddress, localPort: Number(localPort) });
    const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 10000);
    c.on("data", (d) => process.stdout.write(d));
    c.on("end", () => clearTimeout(t));
    c.on("error", (e) => { console.log("ERROR " + e.code); process.exit(1); });' "$@"
}
uask() {
  node -e '
    const [host, localAddress, localPort] = process.argv.slice(1);
    const s = require("dgram").createSocket("udp4");
    const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 10000);
    s.on("message", (m) => { clearTimeout(t); console.log(String(m)); s.close(); });
    s.bind(Number(localPort), localAddress, () => s.send("who", 8082, host));' "$@"
}
echo "routable $(ask 198.51.100.1 198.51.100.2 40123)"
echo "loopback $(ask 127.0.0.1 127.0.0.1 40124)"
echo "udp-routable $(uask 198.51.100.1 198.51.100.2 40125)"
echo "udp-loopback $(uask 127.0.0.1 127.0.0.1 40126)"
`);
  assertOk(r);
  assert.deepEqual(lines(r.stdout, 'add'), ['{"return":{"id":1}}', '{"return":{"id":2}}']);
  // As slirp4netns does: a client the guest can answer is shown as itself.
  assert.deepEqual(lines(r.stdout, 'routable'), ['198.51.100.2 40123']);
  assert.deepEqual(lines(r.stdout, 'udp-routable'), ['198.51.100.2 40125']);
  // The host's loopback is the gateway to the guest; the port is kept.
  assert.deepEqual(lines(r.stdout, 'loopback'), ['10.0.2.2 40124']);
  assert.deepEqual(lines(r.stdout, 'udp-loopback'), ['10.0.2.2 40126']);
});

test('bad requests get slirp4netns error texts; a refused guest port resets', async () => {
  const big = `{"execute":"list_hostfwd","pad":"${'x'.repeat(5000)}"}`;
  const r = await sandbox(`
echo "e1 $(api 'not json')"
echo "e2 $(api '{"arguments":{}}')"
echo "e3 $(api '{"execute":"add_hostfwdx"}')"
echo "e4 $(api '{"execute":"add_hostfwd","arguments":{"proto":"sctp","host_port":8080,"guest_port":80}}')"
echo "e5 $(api '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8080,"guest_addr":"192.0.2.1","guest_port":80}}')"
echo "e6 $(api '{"execute":"remove_hostfwd","arguments":{"id":"1"}}')"
echo "e7 $(api '{"execute":"remove_hostfwd","arguments":{"id":42}}')"
echo "e8 $(api '${big}')"
utools echo-server 127.0.0.1 5353 > "$W/held" &
for _ in $(seq 100); do grep -q listening "$W/held" && break; sleep 0.05; done
echo "e9 $(api '{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"127.0.0.1","host_port":5353,"guest_port":53}}')"
tools stream-echo-server 8090 > /dev/null &
for _ in $(seq 100); do ss -Hltn "sport = :8090" | grep -q . && break; sleep 0.05; done
echo "e10 $(api '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8090,"guest_port":80}}')"
echo "ok1 $(api '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8082,"guest_port":9}}')"
node -e '
  const start = Date.now();
  const c = require("net").connect(8082, "127.0.0.1");
  const done = (what) => { console.log("refused " + what + " ms=" + (Date.now() - start)); process.exit(0); };
  setTimeout(() => done("TIMEOUT"), 10000);
  c.on("error", (e) => done(e.code));
  c.on("end", () => done("EOF"));
  c.resume();
'
`);
  assertOk(r);
  const out = r.stdout;
  const err = (desc: string): string[] => [JSON.stringify({ error: { desc } })];
  assert.deepEqual(lines(out, 'e1'), err('bad request: cannot parse JSON'));
  assert.deepEqual(lines(out, 'e2'), err('bad request: no execute found'));
  assert.deepEqual(lines(out, 'e3'), err('bad request: unknown execute'));
  assert.deepEqual(lines(out, 'e4'), err('bad request: add_hostfwd: bad arguments.proto'));
  assert.deepEqual(lines(out, 'e5'), err('bad request: add_hostfwd: bad arguments.guest_addr'));
  assert.deepEqual(lines(out, 'e6'), err('bad request: remove_hostfwd: bad arguments.id'));
  // An unknown id, as slirp4netns answers it.
  assert.deepEqual(lines(out, 'e7'), err('bad request: remove_hostfwd: bad arguments.id'));
  assert.deepEqual(lines(out, 'e8'), err('bad request: too large message'));
  // The host UDP port is taken (EADDRINUSE).
  assert.deepEqual(lines(out, 'e9'), err('bad request: add_hostfwd: slirp_add_hostfwd failed'));
  // The host port is taken (EADDRINUSE).
  assert.deepEqual(lines(out, 'e10'), err('bad request: add_hostfwd: slirp_add_hostfwd failed'));
  assert.deepEqual(lines(out, 'ok1'), ['{"return":{"id":1}}'], 'failed adds use up no id');
  const refused = /^refused (\S+) ms=(\d+)$/m.exec(out);
  assert.ok(refused, out);
  // Reset by the guest, passed on to the host client as a reset, at once.
  assert.equal(refused[1], 'ECONNRESET', out);
  assert.ok(Number(refused[2]) < 5000, `took ${refused[2]} ms`);
});
