/**
 * Side-by-side benchmark: slirp4netns and rxslirp on the same machine, in
 * the same run, each in a private network namespace made for it (nothing
 * leaves the machine: the servers listen on the sandbox's 127.0.0.1 and
 * the guest reaches them through the gateway 10.0.2.2). Prints each
 * figure and rxslirp's ratio to slirp4netns. Run as root: `npm run bench`
 * (options: --runs N, --mtu M to measure one MTU only, --count N pings).
 *
 * Measured at MTU 1500 and 65520, every load bounded in count and time:
 * - ping RTT to the gateway (the stack's own ICMP answer: the frame path);
 * - iperf3 namespace -> host (up) and host -> namespace (down, -R), 5 s each;
 * - TCP request/response latency: sockperf ping-pong, 64-byte messages,
 *   5 s (sockperf reports latency as half the round trip);
 * - short connections per second: ab, 2000 requests, 8 at a time, each on
 *   its own connection, against a small Node HTTP server;
 * - the stack process's peak RSS (VmHWM) after all of it.
 * A load that fails prints "failed" in its cell rather than a number.
 */
import { inSandbox, REPO, RXSLIRP, SHELL_HELPERS } from '../test/integration/harness.js';
import { resolve } from 'node:path';

const TOOLS = resolve(REPO, 'dist/test/integration/tcp-tools.js');

interface Sample {
  rttAvgUs: number;
  rttMinUs: number;
  upGbps: number;
  downGbps: number;
  rrAvgUs: number;
  rrP50Us: number;
  connPerSec: number;
  peakRssKb: number;
}

const args = process.argv.slice(2);
function flag(name: string, fallback?: number): number | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const RUNS = flag('--runs', 3)!;
const ONE_MTU = flag('--mtu');
const MTUS = ONE_MTU === undefined ? [1500, 65520] : [ONE_MTU];
const COUNT = flag('--count', 500)!;

const IMPLEMENTATIONS: Record<string, string> = {
  slirp4netns: 'slirp4netns',
  rxslirp: `node ${RXSLIRP}`,
};

/** iperf3's JSON on stdin -> the receiver's bits per second. */
const IPERF_BPS =
  'node -e \'const d = JSON.parse(require("fs").readFileSync(0, "utf8")); ' +
  "console.log(d.end.sum_received.bits_per_second)'";

function script(command: string, mtu: number): string {
  return `${SHELL_HELPERS}
B=$(mktemp -d /tmp/rxslirp-bench.XXXXXX)
cleanup() { local rc=$?; kill $(jobs -p) 2>/dev/null || true; rm -rf "$B"; exit $rc; }
trap cleanup EXIT
waitlisten() {
  for _ in $(seq 200); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done
  return 1
}
newns pid
mkfifo "$B/ready"
${command} -c -m ${mtu} -r 3 "$pid" tap0 3>"$B/ready" >/dev/null 2>&1 &
stack=$!
waitready "$B/ready"

head -c 128 /dev/urandom | base64 > "$B/small"
iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
sockperf server --tcp -i 127.0.0.1 -p 11111 >/dev/null 2>&1 &
node "$TOOLS" http-server 8080 "$B/small" >/dev/null &
waitlisten 5201; waitlisten 11111; waitlisten 8080

innsx "$pid" ping -c 20 -i 0.01 -q 10.0.2.2 >/dev/null
innsx "$pid" ping -c ${COUNT} -i 0.002 -q 10.0.2.2
up=$(innsx "$pid" timeout 30 iperf3 -c 10.0.2.2 -p 5201 -t 5 -J | ${IPERF_BPS}) || up=failed
echo "iperf-up $up"
down=$(innsx "$pid" timeout 30 iperf3 -c 10.0.2.2 -p 5201 -t 5 -R -J | ${IPERF_BPS}) || down=failed
echo "iperf-down $down"
innsx "$pid" timeout 30 sockperf ping-pong --tcp -i 10.0.2.2 -p 11111 -t 5 -m 64 2>&1 \\
  | sed 's/\\x1b\\[[0-9;]*m//g' | grep -E 'avg-latency|percentile 50.000' || echo "sockperf failed"
innsx "$pid" timeout 60 ab -q -n 2000 -c 8 -s 10 http://10.0.2.2:8080/ 2>&1 \\
  | grep -E 'Requests per second|Failed requests|Complete requests' || echo "ab failed"
grep VmHWM /proc/$stack/status
`;
}

function number(re: RegExp, text: string): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function measure(command: string, mtu: number): Promise<Sample> {
  const r = await inSandbox(script(command, mtu), { timeoutMs: 180_000, env: { TOOLS } });
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  const rss = /VmHWM:\s+(\d+) kB/.exec(r.stdout);
  if (r.code !== 0 || !rtt || !rss) {
    throw new Error(`benchmark run failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  const failed = Number(/Failed requests:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  return {
    rttMinUs: Number(rtt[1]) * 1000,
    rttAvgUs: Number(rtt[2]) * 1000,
    upGbps: number(/^iperf-up ([\d.e+]+)$/m, r.stdout) / 1e9,
    downGbps: number(/^iperf-down ([\d.e+]+)$/m, r.stdout) / 1e9,
    rrAvgUs: number(/avg-latency=\s*([\d.]+)/, r.stdout),
    rrP50Us: number(/percentile 50\.000 =\s*([\d.]+)/, r.stdout),
    connPerSec: failed > 0 ? Number.NaN : number(/Requests per second:\s+([\d.]+)/, r.stdout),
    peakRssKb: Number(rss[1]),
  };
}

/** The median of the numbers; NaN (a failed load) if any run failed. */
function median(xs: number[]): number {
  if (xs.some((x) => Number.isNaN(x))) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const ROWS: [string, keyof Sample, number, string][] = [
  ['ping RTT avg to gateway (us)', 'rttAvgUs', 1, 'lower is better'],
  ['ping RTT min to gateway (us)', 'rttMinUs', 1, 'lower is better'],
  ['iperf3 up, ns -> host (Gbps)', 'upGbps', 1, 'higher is better'],
  ['iperf3 down, host -> ns (Gbps)', 'downGbps', 1, 'higher is better'],
  ['TCP RR latency avg (us)', 'rrAvgUs', 1, 'sockperf, half RTT; lower is better'],
  ['TCP RR latency median (us)', 'rrP50Us', 1, 'sockperf, half RTT; lower is better'],
  ['connections/s (ab)', 'connPerSec', 1, 'higher is better'],
  ['peak RSS (MB)', 'peakRssKb', 1 / 1024, 'lower is better'],
];

function cell(x: number, width: number, digits = 1): string {
  return (Number.isNaN(x) ? 'failed' : x.toFixed(digits)).padStart(width);
}

async function main(): Promise<void> {
  const results = new Map<string, Sample[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const mtu of MTUS) {
      for (const [name, command] of Object.entries(IMPLEMENTATIONS)) {
        const key = `${name}@${mtu}`;
        results.set(key, [...(results.get(key) ?? []), await measure(command, mtu)]);
      }
    }
  }
  const med = (name: string, mtu: number, key: keyof Sample): number =>
    median(results.get(`${name}@${mtu}`)!.map((s) => s[key]));
  console.log(`rxslirp beside slirp4netns: ${RUNS} runs, ${COUNT} pings each, medians`);
  for (const mtu of MTUS) {
    console.log(`\nMTU ${mtu}`);
    console.log(
      `${'metric'.padEnd(32)}${'slirp4netns'.padStart(12)}${'rxslirp'.padStart(12)}${'ratio'.padStart(8)}`,
    );
    for (const [label, key, scale, note] of ROWS) {
      const a = med('slirp4netns', mtu, key) * scale;
      const b = med('rxslirp', mtu, key) * scale;
      const digits = key === 'upGbps' || key === 'downGbps' ? 2 : 1;
      console.log(
        `${label.padEnd(32)}${cell(a, 12, digits)}${cell(b, 12, digits)}` +
          `${cell(b / a, 8, 2)}  (${note})`,
      );
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
