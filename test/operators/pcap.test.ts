// pcap(): the file is what libpcap readers expect, and each record's time
// is the scheduler's (virtual time) or, without one, the real clock to the
// microsecond.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { from, lastValueFrom, VirtualTimeScheduler } from 'rxjs';
import { pcap } from '../../src/operators/pcap.js';

interface PcapRecord {
  sec: number;
  usec: number;
  frame: Buffer;
}

async function capture(
  frames: Buffer[],
  options: Parameters<typeof pcap>[1] = {},
): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'rxslirp-pcap-'));
  try {
    const path = join(dir, 'c.pcap');
    await lastValueFrom(from(frames).pipe(pcap(path, options)), { defaultValue: undefined });
    // The file stream opens and ends asynchronously; wait for the bytes.
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      if (bytes.length >= 24 + frames.reduce((n, f) => n + 16 + f.length, 0)) return bytes;
    }
    throw new Error('pcap file incomplete');
  } finally {
    setTimeout(() => rmSync(dir, { recursive: true, force: true }), 200);
  }
}

function records(file: Buffer): PcapRecord[] {
  assert.equal(file.readUInt32LE(0), 0xa1b2c3d4, 'magic: microsecond pcap');
  assert.equal(file.readUInt32LE(20), 1, 'LINKTYPE_ETHERNET');
  const out: PcapRecord[] = [];
  for (let at = 24; at < file.length;) {
    const len = file.readUInt32LE(at + 8);
    out.push({
      sec: file.readUInt32LE(at),
      usec: file.readUInt32LE(at + 4),
      frame: file.subarray(at + 16, at + 16 + len),
    });
    at += 16 + len;
  }
  return out;
}

const frames = Array.from({ length: 20 }, (_, i) => Buffer.alloc(60 + i, i));

test('frames are written whole and in order', async () => {
  const r = records(await capture(frames));
  assert.equal(r.length, frames.length);
  r.forEach((rec, i) => assert.deepEqual(rec.frame, frames[i]));
});

test('with a scheduler, records carry its time, fractions of a millisecond kept', async () => {
  const scheduler = new VirtualTimeScheduler();
  scheduler.now = () => 1_234_567.891;
  const [rec] = records(await capture(frames.slice(0, 1), { scheduler }));
  assert.equal(rec!.sec, 1234);
  assert.equal(rec!.usec, 567_891);
});

test('without one, records carry the wall clock to the microsecond', async () => {
  const before = Date.now();
  const r = records(await capture(frames));
  const after = Date.now();
  for (const rec of r) {
    const ms = rec.sec * 1000 + rec.usec / 1000;
    assert.ok(ms >= before - 1 && ms <= after + 1, `${ms} not in [${before}, ${after}]`);
    assert.ok(rec.usec < 1_000_000);
  }
  // Millisecond steps would make every usec a multiple of 1000; twenty
  // records all landing on one by chance is about one in 10^60.
  assert.ok(
    r.some((rec) => rec.usec % 1000 !== 0),
    'timestamps have only millisecond resolution',
  );
});
