/**
 * The host datagram socket stream (streams/udp-socket.ts) against the
 * kernel, in a private namespace with only loopback: datagrams queued
 * before the connect completes go out in order, ICMP port unreachable
 * comes back as ECONNREFUSED, and a target with no route or port 0 is
 * reported as an error event rather than thrown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

test('udpConnection: queued sends, ECONNREFUSED, no route, port 0', async () => {
  const r = await inSandbox('node "$REPO/dist/test/integration/udp-socket-check.js"');
  assertOk(r);
  const result = JSON.parse(r.stdout) as Record<string, string[]>;
  assert.deepEqual(result['echo'], ['message a', 'message b']);
  assert.deepEqual(result['refused'], ['error ECONNREFUSED']);
  assert.deepEqual(result['noRoute'], ['error ENETUNREACH']);
  assert.deepEqual(result['portZero'], ['error ERR_SOCKET_BAD_PORT', 'error ERR_SOCKET_BAD_PORT']);
});
