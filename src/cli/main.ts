/**
 * `rxslirp` entry point: the slirp4netns-compatible attach mode and the
 * `rxslirp run -- COMMAND` mode. Everything user-visible on stdout here is
 * part of the slirp4netns contract (help, version, the start-up text);
 * diagnostics go to stderr.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ipv4ToString, macToString } from '../protocols/address.js';
import { native } from '../native.js';
import { pcap, pcapWriter } from '../operators/pcap.js';
import { faults, type FaultStats } from '../operators/faults.js';
import { logger } from '../util/log.js';
import { API_MAX_REQUEST, ApiErrorText, apiError, isCompleteJson } from '../protocols/api.js';
import { listenApiSocket, type ApiSocket } from '../streams/api-socket.js';
import { attach, type FrameOperator, type Slirp } from '../slirp.js';
import {
  HELP,
  UsageError,
  VERSION,
  notSupportedWithRun,
  parseArgs,
  settingsFrom,
  type Settings,
} from './options.js';

const VALUE_OPTIONS = new Set([
  '-e',
  '--exit-fd',
  '-r',
  '--ready-fd',
  '-m',
  '--mtu',
  '-a',
  '--api-socket',
  '--cidr',
  '--cidr6',
  '--netns-type',
  '--userns-path',
  '--outbound-addr',
  '--outbound-addr6',
  '--macaddress',
  '--target-type',
  '--pcap',
  '--dns-upstream',
  '--resolv-conf',
  '--faults',
]);

function out(text: string): void {
  process.stdout.write(text);
}

function err(text: string): void {
  process.stderr.write(text);
}

/** The slirp4netns start-up text, one item per line. */
export function startupText(s: Settings): string {
  const n = s.network;
  const item = (label: string, value: string | number): string =>
    `${`* ${label}:`.padEnd(19)}${value}\n`;
  let text = 'Starting slirp\n';
  text += item('MTU', n.mtu);
  text += item('Network', ipv4ToString(n.network));
  text += item('Netmask', ipv4ToString(n.netmask));
  text += item('Gateway', ipv4ToString(n.gateway));
  text += item('DNS', ipv4ToString(n.dns));
  text += item('DHCP begin', ipv4ToString(n.dhcpBegin));
  text += item('DHCP end', ipv4ToString(n.dhcpEnd));
  text += item('Recommended IP', ipv4ToString(n.recommended));
  if (s.apiSocket !== undefined) text += item('API Socket', s.apiSocket);
  if (n.outbound?.v4) text += item('Outbound IPv4', n.outbound.v4);
  if (n.outbound?.v6) text += item('Outbound IPv6', n.outbound.v6);
  if (s.mac) text += item('MAC address', macToString(s.mac));
  if (n.hostLoopback) {
    text +=
      `WARNING: 127.0.0.1:* on the host is accessible as ${ipv4ToString(n.gateway)} ` +
      '(set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n';
  }
  return text;
}

function reportUsage(e: UsageError): number {
  if (e.message) err(`${e.message}\n`);
  if (e.showUsage) out(HELP);
  return e.exitCode;
}

function startPipeline(s: Settings, netnsPath: string, usernsPath?: string): Slirp {
  const ingress: FrameOperator[] = [];
  const egress: FrameOperator[] = [];
  if (s.pcap !== undefined) {
    const writer = pcapWriter(s.pcap);
    ingress.push(pcap(writer));
    egress.push(pcap(writer));
  }
  if (s.faults !== undefined) {
    // Between capture and stack: the pcap shows what the guest sent and what it got.
    const seed = s.faults.seed ?? 1;
    const toStack = faults<Buffer>({ ...s.faults, seed });
    const toGuest = faults<Buffer>({ ...s.faults, seed: seed + 1 });
    ingress.push(toStack);
    egress.unshift(toGuest);
    faultStats.push(['ingress', toStack.stats], ['egress', toGuest.stats]);
  }
  return attach({
    netnsPath,
    usernsPath,
    tapName: s.tapName,
    network: s.network,
    configure: s.configure,
    mac: s.mac,
    ingress,
    egress,
    stack: { dns: { upstream: s.dnsUpstream, resolvConf: s.resolvConf } },
    recycle: true,
  });
}

/** What `--faults` did in each direction, logged with the counters. */
const faultStats: [string, FaultStats][] = [];

/** Logs the tap statistics and every counter at info level, at exit. */
function logCounters(slirp: Slirp): void {
  const log = logger('cli');
  if (!log.enabled('info')) return;
  const counters = Object.entries(slirp.counters.snapshot()).map(([k, v]) => `${k}=${v}`);
  const t = slirp.tap.stats;
  log.info(
    `tap: in=${t.framesIn}/${t.bytesIn}B out=${t.framesOut}/${t.bytesOut}B ` +
      `write-errors=${t.writeErrors} write-dropped=${t.writeDropped}`,
  );
  log.info(`counters: ${counters.join(' ')}`);
  for (const [side, stats] of faultStats) {
    const items = Object.entries(stats).map(([k, v]) => `${k}=${v}`);
    log.info(`faults ${side}: ${items.join(' ')}`);
  }
}

/** The control socket (`--api-socket`), answering with the stack's forwarder. */
function startApi(s: Settings, slirp: Slirp): Promise<ApiSocket | undefined> {
  if (s.apiSocket === undefined) return Promise.resolve(undefined);
  const log = logger('api');
  return listenApiSocket(s.apiSocket, {
    maxBytes: API_MAX_REQUEST,
    isComplete: isCompleteJson,
    tooLarge: apiError(ApiErrorText.tooLarge),
    handle: (text) => slirp.hostfwd.execute(text),
    onError: (e) => log.debug(`connection failed: ${e.message}`),
  });
}

function onSignals(handler: (signal: NodeJS.Signals) => void): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, handler);
}

/** Attach mode: `rxslirp [OPTION]... PID|PATH [TAPNAME]`. */
async function attachMode(argv: string[]): Promise<number> {
  const { raw, positional } = parseArgs(argv);
  if (raw.help) {
    out(HELP);
    return 0;
  }
  if (raw.version) {
    out(`rxslirp version ${VERSION}\nnode: ${process.version}\n`);
    return 0;
  }
  const s = settingsFrom(raw, positional);
  for (const w of s.warnings) err(`${w}\n`);

  let slirp: Slirp;
  let api: ApiSocket | undefined;
  try {
    slirp = startPipeline(s, s.target.netnsPath, s.target.usernsPath);
  } catch (e) {
    err(`rxslirp: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    api = await startApi(s, slirp);
  } catch (e) {
    err(`rxslirp: cannot listen on the API socket ${s.apiSocket}: ${(e as Error).message}\n`);
    slirp.close();
    return 1;
  }
  out(startupText(s));
  if (s.readyFd !== undefined) {
    writeSync(s.readyFd, '1');
    closeSync(s.readyFd);
  }

  return new Promise<number>((resolve) => {
    // A signal closes the tap, which settles `done` too: tear down only once.
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      exitPoller?.close();
      api?.close();
      slirp.close();
      logCounters(slirp);
      resolve(code);
    };
    const exitPoller =
      s.exitFd === undefined ? undefined : new (native().Poller)(s.exitFd, () => finish(0));
    exitPoller?.start(1);
    onSignals(() => finish(0));
    slirp.done.then(() => finish(0));
  });
}

/** Splits `run` arguments into our options and the command. */
export function splitRunArgs(argv: string[]): { options: string[]; command: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') {
      return { options: argv.slice(0, i), command: argv.slice(i) };
    }
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return { options: argv, command: [] };
}

/** Run mode: a fresh user+network namespace around COMMAND. */
async function runMode(argv: string[]): Promise<number> {
  const split = splitRunArgs(argv);
  const { raw, positional } = parseArgs(split.options);
  if (raw.help) {
    out(HELP);
    return 0;
  }
  const attachOnly = notSupportedWithRun(raw);
  if (attachOnly) throw new UsageError(`rxslirp: ${attachOnly} is not supported with run`);
  if (split.command.length === 0 || positional.length > 0) {
    throw new UsageError('rxslirp run: expected -- COMMAND [ARG]...', 1, true);
  }
  const s = settingsFrom({ ...raw, configure: true }, [], false);

  // The shell signals on fd 4 once unshare has made the namespaces, then
  // waits on fd 3 until the network is configured before exec'ing COMMAND.
  const script = 'printf x >&4; exec 4>&-; read -r _ <&3; exec 3<&-; exec "$@"';
  const child = spawn(
    'unshare',
    [
      '--user',
      '--map-root-user',
      '--net',
      '--',
      '/bin/sh',
      '-c',
      script,
      'rxslirp-run',
      ...split.command,
    ],
    { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number>((resolve) => {
    child.on('error', (e) => {
      err(`rxslirp: cannot start unshare: ${e.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
  const go = child.stdio[3] as Writable;
  const ready = child.stdio[4] as Readable;
  const isReady = await new Promise<boolean>((resolve) => {
    ready.once('data', () => resolve(true));
    ready.once('end', () => resolve(false));
  });
  if (!isReady || child.pid === undefined) {
    const code = await exited;
    err(`rxslirp: could not create the namespace (unshare exited with ${code})\n`);
    return code === 0 ? 1 : code;
  }

  let slirp: Slirp;
  try {
    slirp = startPipeline(s, `/proc/${child.pid}/ns/net`, `/proc/${child.pid}/ns/user`);
  } catch (e) {
    err(`rxslirp: ${(e as Error).message}\n`);
    child.kill('SIGKILL');
    await exited;
    return 1;
  }
  let api: ApiSocket | undefined;
  try {
    api = await startApi(s, slirp);
  } catch (e) {
    err(`rxslirp: cannot listen on the API socket ${s.apiSocket}: ${(e as Error).message}\n`);
    child.kill('SIGKILL');
    await exited;
    slirp.close();
    return 1;
  }
  onSignals((sig) => child.kill(sig));
  go.end('\n');
  const code = await exited;
  api?.close();
  slirp.close();
  logCounters(slirp);
  return code;
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGPIPE: 13,
    SIGTERM: 15,
  };
  return table[signal] ?? 0;
}

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'run') return await runMode(argv.slice(1));
    return await attachMode(argv);
  } catch (e) {
    if (e instanceof UsageError) return reportUsage(e);
    throw e;
  }
}
