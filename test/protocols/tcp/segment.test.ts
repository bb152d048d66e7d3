import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  TcpSegment,
  TcpControl,
  TcpFlag,
  encodeTcpSegment,
  encodedLength,
  resetFor,
  type TcpRepr,
} from '../../../src/protocols/tcp/segment.js';
import { ParseError } from '../../../src/protocols/errors.js';
import { pseudoSumV4, pseudoSumV6 } from '../../../src/protocols/checksum.js';
import { seq } from '../../../src/protocols/tcp/seq.js';

// Captured from Linux 6.x on loopback inside a private network namespace
// (python AF_PACKET socket): a connection 127.0.0.1:57216 -> :5001 and the
// same over ::1. Loopback leaves checksums to "offload", so the captured
// field was unfinished; it was completed by an independent Python
// implementation of RFC 1071 before being pasted here.
const LO4 = 0x7f000001;
const V4 = {
  syn: 'df8013895110d1a100000000a002ffd7e54900000204ffd70402080a25e82f11000000000103030a',
  synAck: '1389df80046b97445110d1a2a012ffcbf0cf00000204ffd70402080a8005d8bf25e82f110103030a',
  ack: 'df8013895110d1a2046b974580100040194f00000101080a25e82f118005d8bf',
  data:
    'df8013895110d1a2046b974580180040537900000101080a25e82f128005d8bf' +
    '68656c6c6f2c207278736c6972700a',
  fin: 'df8013895110d1b1046b97498011004018a300000101080a25e82f768005d8f2',
  rstAck: '1389df80046b97495110d1b280140040183b00000101080a8005d95625e82f76',
};
const LO6 = Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 1 : 0));
const V6 = {
  syn: 'ae3213895c1248fa00000000a002ffc427c100000204ffc40402080a12a4acf8000000000103030a',
  data:
    'ae3213895c1248fbf66ec4d88018004031f500000101080a12a4acf801d59b2f' +
    '68656c6c6f2c207278736c6972700a',
};

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const ps4 = (n: number): number => pseudoSumV4(LO4, LO4, 6, n);
const ps6 = (n: number): number => pseudoSumV6(LO6, LO6, 6, n);

function parse4(h: string): TcpSegment {
  const b = hex(h);
  return TcpSegment.parse(b, 0, b.length, ps4(b.length));
}

function reencode(s: TcpSegment, ps: (n: number) => number): Uint8Array {
  const r = s.toRepr();
  const out = new Uint8Array(encodedLength(r));
  const end = encodeTcpSegment(out, 0, r, ps(out.length));
  assert.equal(end, out.length);
  return out;
}

describe('TCP codec: captured Linux segments', () => {
  test('a SYN: MSS, SACK-permitted, timestamps, window scale', () => {
    const s = parse4(V4.syn);
    assert.equal(s.srcPort, 57216);
    assert.equal(s.dstPort, 5001);
    assert.equal(s.seq, 0x5110d1a1);
    assert.equal(s.ack, undefined);
    assert.equal(s.control, TcpControl.Syn);
    assert.equal(s.seqLength, 1);
    assert.equal(s.window, 0xffd7);
    assert.equal(s.mss, 65495);
    assert.equal(s.sackPermitted, true);
    assert.equal(s.tsVal, 0x25e82f11);
    assert.equal(s.tsEcr, 0);
    assert.equal(s.windowScale, 10);
    assert.equal(s.payloadLength, 0);
  });

  test('a SYN-ACK acknowledges the SYN', () => {
    const s = parse4(V4.synAck);
    assert.equal(s.control, TcpControl.Syn);
    assert.equal(s.ack, 0x5110d1a2);
    assert.equal(s.tsEcr, 0x25e82f11);
  });

  test('a data segment with PSH carries its payload as a view', () => {
    const s = parse4(V4.data);
    assert.equal(s.control, TcpControl.None);
    assert.equal(s.push, true);
    assert.equal(s.hasAck, true);
    assert.equal(Buffer.from(s.payload).toString(), 'hello, rxslirp\n');
    assert.equal(s.payload.buffer, s.buf.buffer);
    assert.equal(s.seqLength, 15);
  });

  test('FIN and RST are control values', () => {
    assert.equal(parse4(V4.fin).control, TcpControl.Fin);
    assert.equal(parse4(V4.fin).seqLength, 1);
    assert.equal(parse4(V4.rstAck).control, TcpControl.Rst);
  });

  test('every fixture re-encodes byte for byte (IPv4 and IPv6)', () => {
    for (const h of Object.values(V4)) {
      assert.deepEqual(reencode(parse4(h), ps4), hex(h), h);
    }
    for (const h of Object.values(V6)) {
      const b = hex(h);
      const s = TcpSegment.parse(b, 0, b.length, ps6(b.length));
      assert.deepEqual(reencode(s, ps6), b, h);
    }
  });

  test('every truncation is a ParseError', () => {
    for (const h of [...Object.values(V4)]) {
      const b = hex(h);
      for (let n = 0; n < b.length; n++) {
        // The buffer really ends early (the length says more than is there).
        assert.throws(() => TcpSegment.parse(b.subarray(0, n), 0, b.length, ps4(b.length)), {
          code: 'tcp.truncated',
        });
        // The network layer says fewer bytes: options cut, or the checksum fails.
        assert.throws(() => TcpSegment.parse(b, 0, n, ps4(n)), ParseError);
      }
    }
  });

  test('parsing at an offset inside a larger buffer', () => {
    const b = hex(V4.data);
    const framed = new Uint8Array(b.length + 37);
    framed.set(b, 34);
    const s = TcpSegment.parse(framed, 34, b.length, ps4(b.length));
    assert.equal(Buffer.from(s.payload).toString(), 'hello, rxslirp\n');
  });
});

describe('TCP codec: rejects what is not TCP', () => {
  function mutate(h: string, f: (b: Uint8Array) => void): Uint8Array {
    const b = hex(h);
    f(b);
    return b;
  }
  const noSum = (b: Uint8Array): TcpSegment => TcpSegment.parse(b, 0, b.length);

  test('a corrupted byte fails the checksum', () => {
    const b = mutate(V4.data, (x) => (x[40] ^= 0x10));
    assert.throws(() => TcpSegment.parse(b, 0, b.length, ps4(b.length)), {
      code: 'tcp.bad-checksum',
    });
    assert.doesNotThrow(() => noSum(b));
  });

  test('a data offset below 5 words or past the segment', () => {
    assert.throws(() => noSum(mutate(V4.ack, (x) => (x[12] = 0x40))), {
      code: 'tcp.bad-data-offset',
    });
    assert.throws(() => noSum(mutate(V4.ack, (x) => (x[12] = 0xf0))), {
      code: 'tcp.bad-data-offset',
    });
  });

  test('SYN+RST, SYN+FIN and FIN+RST are contradictions', () => {
    for (const flags of [0x06, 0x03, 0x05, 0x07, 0x16]) {
      assert.throws(() => noSum(mutate(V4.ack, (x) => (x[13] = flags))), {
        code: 'tcp.bad-flags',
      });
    }
  });

  test('malformed option lengths', () => {
    // MSS with length 3; an option of length 1; an option running past the header;
    // a kind with no length byte; timestamps of the wrong length.
    const cases = ['0203ffd7', '0401', '080affffffff', '0101010101010103', '01080a11'];
    for (const opt of cases) {
      const padded = opt.padEnd(Math.ceil(opt.length / 8) * 8, '00');
      const head = hex(V4.ack).subarray(0, 20);
      const b = new Uint8Array(20 + padded.length / 2);
      b.set(head);
      b.set(hex(padded), 20);
      b[12] = (b.length / 4) << 4;
      assert.throws(() => noSum(b), { code: 'tcp.bad-option' }, opt);
    }
  });

  test('unknown options are skipped by their length', () => {
    const b = hex(V4.ack).slice(0, 32);
    b.set(hex('fe06aabbccdd0000'), 20); // experimental kind 254, then EOL
    b.set(hex('0103030a'), 28);
    const s = noSum(b);
    assert.equal(s.windowScale, undefined); // after EOL: not read
    b.set(hex('fe06aabbccdd0101'), 20);
    assert.equal(noSum(b).windowScale, 10);
  });
});

describe('TCP codec: encoding', () => {
  const base: TcpRepr = {
    srcPort: 1234,
    dstPort: 80,
    seq: seq(0xfffffff0),
    ack: seq(7),
    control: TcpControl.None,
    push: false,
    window: 512,
    payload: new Uint8Array(0),
  };

  function roundTrip(r: TcpRepr): TcpSegment {
    const out = new Uint8Array(encodedLength(r) + 3);
    const end = encodeTcpSegment(out, 3, r, ps4(encodedLength(r)));
    return TcpSegment.parse(out, 3, end - 3, ps4(end - 3));
  }

  test('SACK blocks and every option survive a round trip', () => {
    const s = roundTrip({
      ...base,
      tsVal: 1,
      tsEcr: 2,
      sackBlocks: [seq(10), seq(20), seq(30), seq(40), seq(50), seq(60)],
      payload: Uint8Array.of(1, 2, 3),
      push: true,
    });
    assert.equal(s.sackBlockCount, 3);
    assert.equal(s.sackLeft(2), 50);
    assert.equal(s.sackRight(1), 40);
    assert.equal(s.tsVal, 1);
    assert.equal(s.tsEcr, 2);
    assert.deepEqual([...s.payload], [1, 2, 3]);
    assert.equal(s.headerLength, 20 + 12 + 28);
  });

  test('a SYN with only SACK-permitted, and ECN bits kept', () => {
    const s = roundTrip({
      ...base,
      ack: undefined,
      control: TcpControl.Syn,
      mss: 1460,
      sackPermitted: true,
      windowScale: 7,
      extraFlags: TcpFlag.ECE | TcpFlag.CWR,
    });
    assert.equal(s.control, TcpControl.Syn);
    assert.equal(s.sackPermitted, true);
    assert.equal(s.hasTimestamps, false);
    assert.equal(s.windowScale, 7);
    assert.equal(s.mss, 1460);
    assert.equal(s.extraFlags, TcpFlag.ECE | TcpFlag.CWR);
  });

  test('options beyond 40 bytes or a short buffer are caller bugs', () => {
    const big = {
      ...base,
      mss: 1460,
      tsVal: 1,
      windowScale: 1,
      sackBlocks: new Array(8).fill(seq(1)),
    };
    assert.throws(() => encodeTcpSegment(new Uint8Array(100), 0, big, 0), RangeError);
    assert.throws(() => encodeTcpSegment(new Uint8Array(19), 0, base, 0), RangeError);
  });

  test('the reply to a segment without a connection (RFC 9293 3.10.7.1)', () => {
    const syn = parse4(V4.syn);
    const r = resetFor(syn)!;
    assert.equal(r.control, TcpControl.Rst);
    assert.equal(r.seq, 0);
    assert.equal(r.ack, 0x5110d1a2);
    assert.equal(r.srcPort, 5001);
    const ack = resetFor(parse4(V4.ack))!;
    assert.equal(ack.seq, 0x046b9745);
    assert.equal(ack.ack, undefined);
    assert.equal(resetFor(parse4(V4.rstAck)), undefined);
  });
});
