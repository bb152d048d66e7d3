/**
 * The control socket's requests: each one slirp4netns documents parses to
 * its typed form, and each kind of bad request gets slirp4netns's exact
 * error text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiRequestError,
  apiError,
  apiListReply,
  apiReturn,
  hostfwdEntry,
  isCompleteJson,
  parseApiRequest,
  type ApiRequest,
} from '../../src/protocols/api.js';
import { parseIpv4 } from '../../src/protocols/address.js';
import { networkConfig } from '../../src/config.js';

const NET = networkConfig('10.0.2.0/24', 1500);

function parse(request: unknown): ApiRequest {
  return parseApiRequest(typeof request === 'string' ? request : JSON.stringify(request), NET);
}

function errorOf(request: unknown): string {
  try {
    parse(request);
  } catch (e) {
    assert.ok(e instanceof ApiRequestError, String(e));
    return e.desc;
  }
  assert.fail(`no error for ${JSON.stringify(request)}`);
}

function add(args: Record<string, unknown>): unknown {
  return { execute: 'add_hostfwd', arguments: args };
}

const GOOD = { proto: 'tcp', host_addr: '127.0.0.1', host_port: 8080, guest_port: 80 };

test('add_hostfwd with every argument', () => {
  const r = parse(add({ ...GOOD, proto: 'udp', guest_addr: '10.0.2.15' }));
  assert.deepEqual(r, {
    execute: 'add_hostfwd',
    spec: {
      proto: 'udp',
      hostAddr: '127.0.0.1',
      hostPort: 8080,
      guestAddr: parseIpv4('10.0.2.15'),
      guestPort: 80,
    },
  });
});

test('add_hostfwd defaults: host_addr 0.0.0.0, guest_addr network+100', () => {
  for (const guest of [{}, { guest_addr: '' }]) {
    const r = parse(add({ proto: 'tcp', host_port: 1, guest_port: 2, ...guest }));
    assert.equal(r.execute, 'add_hostfwd');
    assert.equal(r.spec.hostAddr, '0.0.0.0');
    assert.equal(r.spec.guestAddr, parseIpv4('10.0.2.100'));
  }
  const other = networkConfig('10.0.135.0/24', 1500);
  const r = parseApiRequest(JSON.stringify(add({ ...GOOD, guest_addr: '' })), other);
  assert.equal(r.execute === 'add_hostfwd' && r.spec.guestAddr, parseIpv4('10.0.135.100'));
});

test('remove_hostfwd and list_hostfwd', () => {
  assert.deepEqual(parse({ execute: 'remove_hostfwd', arguments: { id: 3 } }), {
    execute: 'remove_hostfwd',
    id: 3,
  });
  assert.deepEqual(parse({ execute: 'list_hostfwd' }), { execute: 'list_hostfwd' });
});

test('requests that are not JSON, have no execute, or an unknown one', () => {
  for (const text of ['', '{', 'execute', '{"execute":"list_hostfwd"', '{"a":1}x']) {
    assert.equal(errorOf(text), 'bad request: cannot parse JSON', JSON.stringify(text));
  }
  for (const r of [{}, { execute: 1 }, [1], 'null', '42', { arguments: {} }]) {
    assert.equal(errorOf(r), 'bad request: no execute found', JSON.stringify(r));
  }
  assert.equal(errorOf({ execute: 'add_hostfwds' }), 'bad request: unknown execute');
});

test('add_hostfwd: each bad argument is named', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...GOOD, proto: 'sctp' }, 'proto'],
    [{ ...GOOD, proto: undefined }, 'proto'],
    [{ ...GOOD, host_addr: 'localhost' }, 'host_addr'],
    [{ ...GOOD, host_addr: '::1' }, 'host_addr'],
    [{ ...GOOD, host_addr: 7 }, 'host_addr'],
    [{ ...GOOD, host_port: '8080' }, 'host_port'],
    [{ ...GOOD, host_port: 65536 }, 'host_port'],
    [{ ...GOOD, host_port: 0 }, 'host_port'],
    [{ ...GOOD, host_port: 1.5 }, 'host_port'],
    [{ ...GOOD, host_port: undefined }, 'host_port'],
    [{ ...GOOD, guest_addr: '203.0.113.100' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: '10.0.2.2' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: '10.0.2.3' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: '10.0.2.255' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: '10.0.2.0' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: '10.0.2.256' }, 'guest_addr'],
    [{ ...GOOD, guest_addr: 100 }, 'guest_addr'],
    [{ ...GOOD, guest_port: -1 }, 'guest_port'],
    [{ ...GOOD, guest_port: undefined }, 'guest_port'],
  ];
  for (const [args, field] of cases) {
    assert.equal(
      errorOf(add(args)),
      `bad request: add_hostfwd: bad arguments.${field}`,
      JSON.stringify(args),
    );
  }
  assert.equal(
    errorOf({ execute: 'add_hostfwd' }),
    'bad request: add_hostfwd: bad arguments.proto',
  );
});

test('remove_hostfwd: a missing or non-integer id', () => {
  for (const args of [undefined, {}, { id: '1' }, { id: 1.5 }, { id: -1 }, { id: null }]) {
    assert.equal(
      errorOf({ execute: 'remove_hostfwd', arguments: args }),
      'bad request: remove_hostfwd: bad arguments.id',
      JSON.stringify(args),
    );
  }
});

test('isCompleteJson tells a partial request from a whole one', () => {
  assert.equal(isCompleteJson('{"execute":'), false);
  assert.equal(isCompleteJson('{"execute":"list_hostfwd"}'), true);
  assert.equal(isCompleteJson('{"execute":"list_hostfwd"}\n'), true);
});

test('replies: return, error, and the list in both forms', () => {
  assert.equal(apiReturn({ id: 1 }), '{"return":{"id":1}}');
  assert.equal(apiReturn({}), '{"return":{}}');
  assert.equal(apiError('bad request: x'), '{"error":{"desc":"bad request: x"}}');
  const spec = {
    proto: 'tcp' as const,
    hostAddr: '0.0.0.0',
    hostPort: 8080,
    guestAddr: parseIpv4('10.0.2.100'),
    guestPort: 80,
  };
  const entry = {
    id: 2,
    proto: 'tcp',
    host_addr: '0.0.0.0',
    host_port: 8080,
    guest_addr: '10.0.2.100',
    guest_port: 80,
  };
  assert.deepEqual(hostfwdEntry(2, spec), entry);
  const list = JSON.parse(apiListReply([hostfwdEntry(2, spec)])) as unknown;
  assert.deepEqual(list, { return: { entries: [entry] }, entries: [entry] });
});
