/**
 * The slirp4netns command line: every option name slirp4netns accepts (so
 * that rootlesskit and podman, which look for option names in `--help`,
 * find them all), the same error texts and exit code 1, and the extras of
 * rxslirp. Options that rxslirp does not implement yet are refused with a
 * "not supported yet" error, never silently ignored.
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import {
  ConfigError,
  DEFAULT_CIDR,
  DEFAULT_MTU,
  networkConfig,
  parseMtu,
  type NetworkConfig,
} from '../config.js';
import { parseMac, type Mac } from '../protocols/address.js';
import { parseDnsServer } from '../protocols/resolver.js';
import type { FaultsOptions } from '../operators/faults.js';

export const VERSION = '0.1.0';

export const USAGE =
  'Usage: rxslirp [OPTION]... PID|PATH [TAPNAME]\n   or: rxslirp run [OPTION]... -- COMMAND [ARG]...';

export const HELP = `${USAGE}
User-mode networking for unprivileged network namespaces, compatible with
slirp4netns. The first form attaches to the namespace of PID (or the one
bound at PATH); the second creates a fresh user and network namespace,
configures it, runs COMMAND inside and exits with its status.

-c, --configure          bring up the tap, give it an address and a default route
-e, --exit-fd=FD         exit as soon as anything happens on FD
-r, --ready-fd=FD        write "1" to FD once the network is ready, then close it
-m, --mtu=MTU            MTU of the tap (default=1500, max=65521)
-6, --enable-ipv6        enable IPv6: router advertisements for SLAAC, gateway fd00::2, DNS fd00::3
-a, --api-socket=PATH    JSON control socket for port forwarding (add_hostfwd, list_hostfwd,
                         remove_hostfwd; TCP only for now)
--cidr=CIDR              network of the tap (default=10.0.2.0/24)
--cidr6=PREFIX/64        IPv6 prefix of the tap, needs -6 (default=fd00::/64; rxslirp only)
--disable-host-loopback  do not let the gateway address reach 127.0.0.1 on the host
--netns-type=TYPE        how PID|PATH names the namespace ([pid|path], default=pid)
--userns-path=PATH       user namespace to join before the network namespace
--enable-sandbox         sandbox the process (not supported yet)
--enable-seccomp         limit system calls with seccomp (not supported yet)
--outbound-addr=IPv4     source address (or interface) of outgoing TCP and UDP sockets
--outbound-addr6=IPv6    the same for IPv6
--disable-dns            do not answer at network+3 (10.0.2.3 by default)
--macaddress=MAC         MAC address of the tap (needs -c)
--target-type=TYPE       target type ([netns|bess], default=netns; bess not supported)
--pcap=FILE              write every frame to FILE in pcap format (rxslirp only)
--dns-upstream=ADDR[:PORT]
                         DNS server that network+3 forwards to (rxslirp only;
                         default: the first nameserver of --resolv-conf)
--resolv-conf=PATH       resolv.conf naming the DNS server, re-read when it changes
                         (default=/etc/resolv.conf; rxslirp only)
--faults=SPEC            inject faults both ways, e.g. drop=0.02,reorder=0.02,seed=7
                         (keys: drop, duplicate, reorder, delay (ms), seed; rxslirp only)
-h, --help               show this help and exit
-v, --version            show version and exit
`;

/** Exit the process with this code after printing `message` (may be empty). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly showUsage = false,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type NetnsTarget = { netnsPath: string; usernsPath?: string; pid?: number };

export interface Settings {
  target: NetnsTarget;
  tapName: string;
  configure: boolean;
  mac?: Mac;
  exitFd?: number;
  readyFd?: number;
  pcap?: string;
  /** `--dns-upstream`, checked: ADDR[:PORT] or [ADDR6]:PORT. */
  dnsUpstream?: string;
  resolvConf?: string;
  /** `--faults`: applied to ingress (with `seed`) and egress (with `seed + 1`). */
  faults?: FaultsOptions;
  /** `--api-socket`: the control socket's path (under 108 bytes). */
  apiSocket?: string;
  network: NetworkConfig;
  warnings: string[];
}

interface Raw {
  configure?: boolean;
  exitFd?: string;
  readyFd?: string;
  mtu?: string;
  enableIpv6?: boolean;
  apiSocket?: string;
  cidr?: string;
  cidr6?: string;
  disableHostLoopback?: boolean;
  netnsType?: string;
  usernsPath?: string;
  enableSandbox?: boolean;
  enableSeccomp?: boolean;
  outboundAddr?: string;
  outboundAddr6?: string;
  disableDns?: boolean;
  macaddress?: string;
  targetType?: string;
  pcap?: string;
  dnsUpstream?: string;
  resolvConf?: string;
  faults?: string;
  help?: boolean;
  version?: boolean;
}

function command(): Command {
  const c = new Command('rxslirp')
    .helpOption(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .allowExcessArguments(true)
    .argument('[target]')
    .argument('[tapname]')
    .argument('[rest...]');
  const options: [string, string?][] = [
    ['-c, --configure'],
    ['-e, --exit-fd <FD>'],
    ['-r, --ready-fd <FD>'],
    ['-m, --mtu <MTU>'],
    ['-6, --enable-ipv6'],
    ['-a, --api-socket <PATH>'],
    ['--cidr <CIDR>'],
    ['--cidr6 <CIDR6>'],
    ['--disable-host-loopback'],
    ['--netns-type <TYPE>'],
    ['--userns-path <PATH>'],
    ['--enable-sandbox'],
    ['--enable-seccomp'],
    ['--outbound-addr <ADDR>'],
    ['--outbound-addr6 <ADDR>'],
    ['--disable-dns'],
    ['--macaddress <MAC>'],
    ['--target-type <TYPE>'],
    ['--pcap <FILE>'],
    ['--dns-upstream <ADDR>'],
    ['--resolv-conf <PATH>'],
    ['--faults <SPEC>'],
    ['-h, --help'],
    ['-v, --version'],
  ];
  for (const [flags] of options) c.addOption(new Option(flags));
  return c;
}

/** Parses argv (without node and script); throws UsageError. */
export function parseArgs(argv: string[]): { raw: Raw; positional: string[] } {
  const c = command();
  try {
    c.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new UsageError(getoptMessage(err), 1, true);
    throw err;
  }
  const positional = c.args;
  return { raw: c.opts<Raw>(), positional };
}

function getoptMessage(err: CommanderError): string {
  const option = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'commander.unknownOption':
      return `rxslirp: unrecognized option '${option}'`;
    case 'commander.optionMissingArgument':
      return `rxslirp: option '${longName(option)}' requires an argument`;
    default:
      return `rxslirp: ${err.message.replace(/^error: /, '')}`;
  }
}

/** `-m, --mtu <MTU>` -> `--mtu`: the name getopt would print. */
function longName(flags: string): string {
  return /--[\w-]+/.exec(flags)?.[0] ?? flags;
}

function fdOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a non-negative integer`);
  return Number(value);
}

const FAULT_KEYS: Record<string, keyof FaultsOptions> = {
  drop: 'drop',
  duplicate: 'duplicate',
  reorder: 'reorder',
  delay: 'delayMs',
  seed: 'seed',
};

/** `drop=0.02,reorder=0.02,seed=7` -> faults options; throws UsageError. */
export function parseFaults(spec: string): FaultsOptions {
  const options: Record<string, number> = {};
  for (const item of spec.split(',')) {
    const [key = '', value = '', ...extra] = item.split('=');
    const name = FAULT_KEYS[key];
    const n = Number(value);
    const fraction = name !== 'seed' && name !== 'delayMs';
    const ok = name !== undefined && extra.length === 0 && value !== '' && Number.isFinite(n);
    if (!ok || n < 0 || (fraction && n > 1) || (name === 'seed' && !Number.isInteger(n))) {
      throw new UsageError(`--faults: bad item "${item}" (expected e.g. drop=0.02,seed=7)`);
    }
    options[name] = n;
  }
  return options as FaultsOptions;
}

function dnsUpstreamOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    parseDnsServer(value);
  } catch (err) {
    throw new UsageError(`--dns-upstream: ${(err as Error).message}`);
  }
  return value;
}

/**
 * `--outbound-addr`/`--outbound-addr6`: an address of that family, or the
 * name of an interface whose first address of that family is taken.
 */
export function resolveOutbound(text: string, family: 4 | 6): string {
  const wanted = family === 4 ? 'IPv4' : 'IPv6';
  if (isIP(text) === family) return text;
  const address = networkInterfaces()[text]?.find((a) => a.family === wanted);
  if (address) return address.address;
  const option = family === 4 ? 'outbound-addr' : 'outbound-addr6';
  throw new UsageError(`${option} has to be valid ipv${family} address or interface name.`);
}

function notSupported(raw: Raw): string | undefined {
  if (raw.enableSandbox) return '--enable-sandbox';
  if (raw.enableSeccomp) return '--enable-seccomp';
  if (raw.targetType === 'bess') return '--target-type=bess';
  return undefined;
}

/**
 * Options that only make sense when attaching to a namespace someone else
 * made: `rxslirp run` makes its own and waits for its command, so it
 * refuses them rather than ignore them.
 */
export function notSupportedWithRun(raw: Raw): string | undefined {
  if (raw.readyFd !== undefined) return '--ready-fd';
  if (raw.exitFd !== undefined) return '--exit-fd';
  if (raw.netnsType !== undefined) return '--netns-type';
  if (raw.usernsPath !== undefined) return '--userns-path';
  return undefined;
}

/**
 * Validates options in slirp4netns's order and with its messages.
 * `needTarget` is false for `rxslirp run`, which makes its own namespace.
 */
export function settingsFrom(raw: Raw, positional: string[], needTarget = true): Settings {
  const warnings: string[] = [];
  let mtu = DEFAULT_MTU;
  try {
    if (raw.mtu !== undefined) mtu = parseMtu(raw.mtu);
  } catch (err) {
    throw new UsageError((err as ConfigError).message);
  }
  const exitFd = fdOption(raw.exitFd, 'exit-fd');
  const readyFd = fdOption(raw.readyFd, 'ready-fd');
  if (raw.macaddress !== undefined && !raw.configure) {
    throw new UsageError('--macaddr cannot be specified when --configure or -c is not specified');
  }
  let mac: Mac | undefined;
  if (raw.macaddress !== undefined) {
    try {
      mac = parseMac(raw.macaddress);
    } catch {
      throw new UsageError(
        `"${raw.macaddress}" is an invalid MAC address.\n` +
          "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').",
      );
    }
  }
  if (raw.targetType !== undefined && raw.targetType !== 'netns' && raw.targetType !== 'bess') {
    throw new UsageError('--target-type must be either "netns" or "bess"');
  }
  const netnsType = raw.netnsType ?? 'pid';
  if (netnsType !== 'pid' && netnsType !== 'path') {
    throw new UsageError('--netns-type must be either "pid" or "path"');
  }
  if (raw.apiSocket !== undefined && Buffer.byteLength(raw.apiSocket) >= 108) {
    throw new UsageError('the specified API socket path is too long (>= 108)');
  }
  if (raw.cidr6 !== undefined && !raw.enableIpv6) {
    throw new UsageError('--cidr6 cannot be specified when --enable-ipv6 or -6 is not specified');
  }
  const unsupported = notSupported(raw);
  if (unsupported) throw new UsageError(`rxslirp: ${unsupported} is not supported yet`);

  let network: NetworkConfig;
  try {
    network = networkConfig(raw.cidr ?? DEFAULT_CIDR, mtu, {
      disableDns: raw.disableDns,
      disableHostLoopback: raw.disableHostLoopback,
      ipv6: raw.enableIpv6 ? (raw.cidr6 ?? true) : undefined,
    });
  } catch (err) {
    throw new UsageError((err as ConfigError).message);
  }

  if (raw.outboundAddr !== undefined || raw.outboundAddr6 !== undefined) {
    network.outbound = {
      v4: raw.outboundAddr === undefined ? undefined : resolveOutbound(raw.outboundAddr, 4),
      v6: raw.outboundAddr6 === undefined ? undefined : resolveOutbound(raw.outboundAddr6, 6),
    };
  }

  if (raw.usernsPath !== undefined && !existsSync(raw.usernsPath)) {
    throw new UsageError(`userns path doesn't exist: ${raw.usernsPath}`);
  }
  const [targetText, tapName = 'tap0', ...extra] = positional;
  if (extra.length > 0) warnings.push('WARNING: too many arguments');
  let target: NetnsTarget = { netnsPath: '' };
  if (needTarget) {
    if (targetText === undefined) throw new UsageError('', 1, true);
    target = resolveTarget(netnsType, targetText, raw.usernsPath);
  }
  return {
    target,
    tapName,
    configure: raw.configure ?? false,
    mac,
    exitFd,
    readyFd,
    pcap: raw.pcap,
    dnsUpstream: dnsUpstreamOption(raw.dnsUpstream),
    resolvConf: raw.resolvConf,
    faults: raw.faults === undefined ? undefined : parseFaults(raw.faults),
    apiSocket: raw.apiSocket,
    network,
    warnings,
  };
}

function resolveTarget(type: string, text: string, usernsPath?: string): NetnsTarget {
  if (type === 'path') {
    if (!existsSync(text)) {
      throw new UsageError(
        'existing path expected when --netns-type=path: No such file or directory',
      );
    }
    return usernsPath === undefined ? { netnsPath: text } : { netnsPath: text, usernsPath };
  }
  if (!/^\d+$/.test(text) || Number(text) <= 0) {
    throw new UsageError(`PID must be a positive integer: ${text}`, 1, true);
  }
  const pid = Number(text);
  return {
    pid,
    netnsPath: `/proc/${pid}/ns/net`,
    usernsPath: usernsPath ?? `/proc/${pid}/ns/user`,
  };
}
