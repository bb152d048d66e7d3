/**
 * Side-by-side benchmark: slirp4netns and rxslirp on the same machine, in
 * the same run, each in a private network namespace made for it (nothing
 * leaves the machine). Prints each figure and rxslirp's ratio to
 * slirp4netns. Run as root: `npm run bench` (options: --runs N, --mtu M,
 * --count N).
 *
 * Measured now: ping RTT to the gateway (the stack's own ICMP answer) and
 * the stack process's peak RSS. The throughput, request/response and
 * connection-rate columns of DESIGN.md need TCP NAT and are printed as
 * "not yet" until it lands.
 */
import { inSandbox, RXSLIRP, SHELL_HELPERS } from '../test/integration/harness.js';

interface Sample {
  rttAvgUs: number;
  rttMinUs: number;
  peakRssKb: number;
}

const args = process.argv.slice(2);
function flag(name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const RUNS = flag('--runs', 3);
const MTU = flag('--mtu', 1500);
const COUNT = flag('--count', 500);

const IMPLEMENTATIONS: Record<string, string> = {
  slirp4netns: 'slirp4netns',
  rxslirp: `node ${RXSLIRP}`,
};

async function measure(command: string): Promise<Sample> {
  const r = await inSandbox(
    `${SHELL_HELPERS}
newns pid
mkfifo /tmp/ready.$$
${command} -c -m ${MTU} -r 3 "$pid" tap0 3>/tmp/ready.$$ >/dev/null 2>&1 &
stack=$!
waitready /tmp/ready.$$
innsx "$pid" ping -c 20 -i 0.01 -q 10.0.2.2 >/dev/null
innsx "$pid" ping -c ${COUNT} -i 0.002 -q 10.0.2.2
grep VmHWM /proc/$stack/status
kill "$stack" "$pid"
`,
    { timeoutMs: 120_000 },
  );
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  const rss = /VmHWM:\s+(\d+) kB/.exec(r.stdout);
  if (r.code !== 0 || !rtt || !rss) {
    throw new Error(`benchmark run failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return {
    rttMinUs: Number(rtt[1]) * 1000,
    rttAvgUs: Number(rtt[2]) * 1000,
    peakRssKb: Number(rss[1]),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const results: Record<string, Sample[]> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, command] of Object.entries(IMPLEMENTATIONS)) {
      (results[name] ??= []).push(await measure(command));
    }
  }
  const med = (name: string, key: keyof Sample): number =>
    median(results[name]!.map((s) => s[key]));
  const rows: [string, keyof Sample, number, string][] = [
    ['ping RTT avg to gateway (us)', 'rttAvgUs', 1, 'lower is better'],
    ['ping RTT min to gateway (us)', 'rttMinUs', 1, 'lower is better'],
    ['peak RSS (MB)', 'peakRssKb', 1 / 1024, 'lower is better'],
  ];
  console.log(`rxslirp beside slirp4netns: MTU ${MTU}, ${RUNS} runs, ${COUNT} pings each, medians`);
  console.log(
    `${'metric'.padEnd(32)}${'slirp4netns'.padStart(12)}${'rxslirp'.padStart(12)}${'ratio'.padStart(8)}`,
  );
  for (const [label, key, scale, note] of rows) {
    const a = med('slirp4netns', key) * scale;
    const b = med('rxslirp', key) * scale;
    console.log(
      `${label.padEnd(32)}${a.toFixed(1).padStart(12)}${b.toFixed(1).padStart(12)}` +
        `${(b / a).toFixed(2).padStart(8)}  (${note})`,
    );
  }
  for (const label of [
    'iperf3 up (Gbps)',
    'iperf3 down (Gbps)',
    'TCP RR latency (us)',
    'connections/s (ab)',
  ]) {
    console.log(`${label.padEnd(32)}${'not yet: needs TCP NAT'.padStart(32)}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
