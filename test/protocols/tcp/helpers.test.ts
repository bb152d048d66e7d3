// The endpoint's helpers on their own: what the handshake settles, the
// RFC 6298 arithmetic, and the reassembly store's caps.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mssFromMtu, negotiate, windowShiftFor } from '../../../src/protocols/tcp/handshake.js';
import { RttEstimator } from '../../../src/protocols/tcp/rtt.js';
import { Reassembly } from '../../../src/protocols/tcp/reassembly.js';
import { seq, seqAdd } from '../../../src/protocols/tcp/seq.js';

describe('handshake', () => {
  test('MSS from the MTU, IPv4 and IPv6, up to the largest slirp4netns MTU', () => {
    assert.equal(mssFromMtu(1500, false), 1460);
    assert.equal(mssFromMtu(1500, true), 1440);
    assert.equal(mssFromMtu(65520, false), 65480);
  });

  test('the window shift is the smallest that covers the buffer, at most 14', () => {
    assert.equal(windowShiftFor(65535), 0);
    assert.equal(windowShiftFor(65536), 1);
    assert.equal(windowShiftFor(4 * 2 ** 20), 7);
    assert.equal(windowShiftFor(2 ** 40), 14);
  });

  const ours = {
    windowScaling: true,
    timestamps: true,
    sack: true,
    mss: 1460,
    ipv6: false,
    rcvShift: 7,
  };

  test('options are used only when both sides offer them', () => {
    const both = negotiate(ours, {
      mss: 1400,
      windowScale: 9,
      tsVal: 5,
      sackPermitted: true,
      window: 100,
    });
    assert.deepEqual(both, {
      rcvWscale: 7,
      sndWscale: 9,
      timestamps: true,
      sack: true,
      sndMss: 1400 - 12,
    });
    const none = negotiate(ours, {
      mss: undefined,
      windowScale: undefined,
      tsVal: undefined,
      sackPermitted: false,
      window: 1,
    });
    assert.deepEqual(none, {
      rcvWscale: 0,
      sndWscale: 0,
      timestamps: false,
      sack: false,
      sndMss: 536,
    });
    const off = negotiate(
      { ...ours, windowScaling: false, timestamps: false, sack: false },
      {
        mss: 9000,
        windowScale: 3,
        tsVal: 1,
        sackPermitted: true,
        window: 1,
      },
    );
    assert.deepEqual(off, {
      rcvWscale: 0,
      sndWscale: 0,
      timestamps: false,
      sack: false,
      sndMss: 1460,
    });
  });

  test('a shift above 14 is taken as 14 (RFC 7323 2.3)', () => {
    const n = negotiate(ours, {
      mss: 1460,
      windowScale: 20,
      tsVal: undefined,
      sackPermitted: false,
      window: 1,
    });
    assert.equal(n.sndWscale, 14);
  });
});

describe('reassembly copies what it holds', () => {
  test('a Buffer view is copied, so reusing the frame cannot change held bytes', () => {
    const r = new Reassembly(1 << 20, 64);
    const frame = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    r.insert(seq(100), frame.subarray(2, 6), seq(90));
    frame.fill(0xee); // the tap reuses the frame's memory
    r.insert(seq(90), new Uint8Array(10), seq(90));
    assert.deepEqual([...r.take(seq(100))!], [3, 4, 5, 6]);
  });
});

describe('reassembly as SACK blocks', () => {
  test('adjacent pieces merge, the recent block leads, and the count is capped', () => {
    const r = new Reassembly(1 << 20, 64);
    const base = seq(0xffffff00); // across the wrap
    const at = (n: number) => seqAdd(base, n);
    r.insert(at(100), new Uint8Array(50), base);
    r.insert(at(150), new Uint8Array(50), base);
    r.insert(at(300), new Uint8Array(10), base);
    r.insert(at(400), new Uint8Array(10), base);
    const out: ReturnType<typeof seq>[] = [];
    r.sackBlocks(out, at(300), 4);
    assert.deepEqual(out, [at(300), at(310), at(100), at(200), at(400), at(410)]);
    r.sackBlocks(out, at(160), 2);
    assert.deepEqual(out, [at(100), at(200), at(300), at(310)]);
    r.sackBlocks(out, undefined, 4);
    assert.deepEqual(out, [at(100), at(200), at(300), at(310), at(400), at(410)]);
    r.clear();
    r.sackBlocks(out, at(300), 4);
    assert.deepEqual(out, []);
  });
});

describe('RTO (RFC 6298)', () => {
  test('first sample: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR', () => {
    const r = new RttEstimator(1000, 1, 60000);
    assert.equal(r.rto, 1000);
    r.sample(100);
    assert.equal(r.srtt, 100);
    assert.equal(r.rttvar, 50);
    assert.equal(r.rto, 300);
  });

  test('later samples smooth with 1/8 and 1/4; the bounds hold', () => {
    const r = new RttEstimator(1000, 200, 60000);
    r.sample(100);
    r.sample(200);
    assert.equal(r.srtt, 112.5);
    assert.equal(r.rttvar, 62.5);
    assert.equal(r.rto, 363);
    for (let i = 0; i < 20; i++) r.backoff();
    assert.equal(r.rto, 60000);
    for (let i = 0; i < 50; i++) r.sample(1);
    assert.equal(r.rto, 200);
  });

  test('after a SYN timeout with no sample, data starts at 3 s (RFC 6298 5.7)', () => {
    const r = new RttEstimator(1000, 200, 60000);
    r.resetAfterSynTimeout();
    assert.equal(r.rto, 3000);
  });
});

describe('reassembly', () => {
  const at = (n: number) => seqAdd(seq(0xfffffff0), n);
  const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => from + i);

  test('holds each byte once and gives them back in order across the wrap', () => {
    const r = new Reassembly(1000, 10);
    assert.equal(r.insert(at(30), bytes(30, 10), at(0)), 10);
    assert.equal(r.insert(at(10), bytes(10, 30), at(0)), 20); // overlaps: only the new bytes
    assert.equal(r.insert(at(35), bytes(35, 3), at(0)), 0);
    assert.equal(r.take(at(0)), undefined);
    const got = [...r.take(at(10))!, ...r.take(at(30))!];
    assert.deepEqual(got, [...bytes(10, 30)]);
    assert.ok(r.isEmpty);
  });

  test('the caps on bytes and pieces hold: what does not fit is not held', () => {
    const r = new Reassembly(15, 2);
    assert.equal(r.insert(at(10), bytes(0, 10), at(0)), 10);
    assert.equal(r.insert(at(30), bytes(0, 10), at(0)), 0); // over the byte cap
    assert.equal(r.insert(at(25), bytes(0, 5), at(0)), 5);
    assert.equal(r.insert(at(40), bytes(0, 1), at(0)), 0); // over the piece cap
    assert.equal(r.bytes, 15);
    assert.equal(r.pieceCount, 2);
  });

  test('pieces wholly behind RCV.NXT are dropped, a straddling one trimmed', () => {
    const r = new Reassembly(100, 10);
    r.insert(at(5), bytes(5, 5), at(0));
    r.insert(at(12), bytes(12, 6), at(0));
    assert.deepEqual([...r.take(at(14))!], [14, 15, 16, 17]);
    assert.equal(r.bytes, 0);
  });
});
