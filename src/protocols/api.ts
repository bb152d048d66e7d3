/**
 * The JSON control socket's requests and replies (`--api-socket`), as
 * slirp4netns documents them: pure parsing and validation, no I/O.
 *
 * A request is one JSON object `{"execute": NAME, "arguments": {...}}`.
 * `parseApiRequest` turns its text into a typed request or into the exact
 * error text slirp4netns answers with; the caller executes the request and
 * formats the outcome with `apiReturn` / `apiError`.
 *
 * What we check, in slirp4netns's order: the text is JSON, it has a string
 * `execute`, the name is known, then each argument. `host_addr` defaults
 * to 0.0.0.0 and must be an IPv4 address; `guest_addr`, empty or missing,
 * is network+100 and must be a host of the guest network other than the
 * stack's own gateway and DNS addresses; ports are integers 1..65535.
 */
import { ipv4ToString, parseIpv4, type Ipv4 } from './address.js';

/** Largest request, in bytes, the socket accepts. */
export const API_MAX_REQUEST = 4096;

export const ApiErrorText = {
  parse: 'bad request: cannot parse JSON',
  noExecute: 'bad request: no execute found',
  unknownExecute: 'bad request: unknown execute',
  tooLarge: 'bad request: too large message',
  addFailed: 'bad request: add_hostfwd: slirp_add_hostfwd failed',
  removeId: 'bad request: remove_hostfwd: bad arguments.id',
} as const;

export type HostfwdProto = 'tcp' | 'udp';

export interface HostfwdSpec {
  proto: HostfwdProto;
  hostAddr: string;
  hostPort: number;
  guestAddr: Ipv4;
  guestPort: number;
}

export type ApiRequest =
  | { execute: 'add_hostfwd'; spec: HostfwdSpec }
  | { execute: 'remove_hostfwd'; id: number }
  | { execute: 'list_hostfwd' };

/** What `guest_addr` may be: the guest network's addresses. */
export interface GuestNetwork {
  network: Ipv4;
  netmask: Ipv4;
  gateway: Ipv4;
  dns: Ipv4;
  recommended: Ipv4;
}

/** A request that cannot be executed; `desc` is the text for the client. */
export class ApiRequestError extends Error {
  constructor(readonly desc: string) {
    super(desc);
    this.name = 'ApiRequestError';
  }
}

type Json = Record<string, unknown>;

/** Parses one request; throws ApiRequestError with slirp4netns's text. */
export function parseApiRequest(text: string, net: GuestNetwork): ApiRequest {
  const request = parseJson(text);
  if (request === undefined) throw new ApiRequestError(ApiErrorText.parse);
  if (!isObject(request) || typeof request['execute'] !== 'string') {
    throw new ApiRequestError(ApiErrorText.noExecute);
  }
  const args = isObject(request['arguments']) ? request['arguments'] : {};
  switch (request['execute']) {
    case 'add_hostfwd':
      return { execute: 'add_hostfwd', spec: hostfwdSpec(args, net) };
    case 'remove_hostfwd':
      return { execute: 'remove_hostfwd', id: hostfwdId(args) };
    case 'list_hostfwd':
      return { execute: 'list_hostfwd' };
    default:
      throw new ApiRequestError(ApiErrorText.unknownExecute);
  }
}

/**
 * Whether `text` is a whole JSON document yet: the socket reads until EOF
 * or until this holds.
 */
export function isCompleteJson(text: string): boolean {
  return parseJson(text) !== undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badAdd(field: string): ApiRequestError {
  return new ApiRequestError(`bad request: add_hostfwd: bad arguments.${field}`);
}

function hostfwdSpec(args: Json, net: GuestNetwork): HostfwdSpec {
  const proto = args['proto'];
  if (proto !== 'tcp' && proto !== 'udp') throw badAdd('proto');

  const hostAddr = args['host_addr'] ?? '0.0.0.0';
  if (typeof hostAddr !== 'string' || tryIpv4(hostAddr) === undefined) throw badAdd('host_addr');

  const hostPort = port(args['host_port']);
  if (hostPort === undefined) throw badAdd('host_port');

  const guestText = args['guest_addr'] ?? '';
  if (typeof guestText !== 'string') throw badAdd('guest_addr');
  const guestAddr = guestText === '' ? net.recommended : tryIpv4(guestText);
  if (guestAddr === undefined || !isGuestHost(guestAddr, net)) throw badAdd('guest_addr');

  const guestPort = port(args['guest_port']);
  if (guestPort === undefined) throw badAdd('guest_port');

  return { proto, hostAddr, hostPort, guestAddr, guestPort };
}

function hostfwdId(args: Json): number {
  const id = args['id'];
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new ApiRequestError(ApiErrorText.removeId);
  }
  return id;
}

function port(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined;
}

/** Dotted-quad IPv4 only (what inet_pton accepts), else undefined. */
function tryIpv4(text: string): Ipv4 | undefined {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return undefined;
  try {
    return parseIpv4(text);
  } catch {
    return undefined;
  }
}

/** A host address of the guest network that is not the stack's own. */
function isGuestHost(a: Ipv4, net: GuestNetwork): boolean {
  const broadcast = (net.network | ~net.netmask) >>> 0;
  return (
    (a & net.netmask) >>> 0 === net.network &&
    a !== net.network &&
    a !== broadcast &&
    a !== net.gateway &&
    a !== net.dns
  );
}

/** One forward as `list_hostfwd` shows it. */
export interface HostfwdEntry {
  id: number;
  proto: HostfwdProto;
  host_addr: string;
  host_port: number;
  guest_addr: string;
  guest_port: number;
}

export function hostfwdEntry(id: number, spec: HostfwdSpec): HostfwdEntry {
  return {
    id,
    proto: spec.proto,
    host_addr: spec.hostAddr,
    host_port: spec.hostPort,
    guest_addr: ipv4ToString(spec.guestAddr),
    guest_port: spec.guestPort,
  };
}

/** A successful reply. */
export function apiReturn(value: Json): string {
  return JSON.stringify({ return: value });
}

/**
 * The `list_hostfwd` reply. slirp4netns's manual puts the entries under
 * `return.entries`, its implementation sends them as a top-level `entries`;
 * we send both, so that clients written against either keep working.
 */
export function apiListReply(entries: HostfwdEntry[]): string {
  return JSON.stringify({ return: { entries }, entries });
}

export function apiError(desc: string): string {
  return JSON.stringify({ error: { desc } });
}
