// The recycler's one promise: a block is reused only once it is full (no
// longer the one views are cut from) and every view cut from it was given
// back; anything else it leaves to the garbage collector.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Recycler } from '../../src/streams/recycler.js';

describe('Recycler', () => {
  test('a block comes back only when retired and every view was given back', () => {
    const r = new Recycler(1024, 4);
    const a = r.take(600);
    const b = r.take(300);
    r.give(a);
    const c = r.take(600); // does not fit: b is still out, so a second block
    assert.notEqual(c.buffer, a.buffer);
    assert.equal(r.stats.allocated, 2);
    r.give(b); // the first block, retired, now has nothing out
    const d = r.take(600); // the second block is full (c is out): the first is reused
    assert.equal(d.buffer, a.buffer);
    assert.equal(r.stats.allocated, 2);
    assert.equal(r.stats.reused, 1);
  });

  test('one view never given back keeps its block out of reuse', () => {
    const r = new Recycler(1024, 4);
    const kept = r.take(600);
    r.take(600);
    r.take(600);
    r.take(600);
    assert.equal(r.stats.reused, 0);
    for (let i = 0; i < 8; i++) assert.notEqual(r.take(600).buffer, kept.buffer);
  });

  test('views start 8-byte aligned; reserve and cut carve bytes in place', () => {
    const r = new Recycler(4096, 1);
    r.take(3);
    assert.equal(r.take(5).byteOffset % 8, 0);
    const { buf, at } = r.reserve(100);
    buf[at] = 42;
    const v = r.cut(10);
    assert.equal(v[0], 42);
    assert.equal(v.buffer, buf.buffer);
  });

  test('views of memory it did not cut are ignored', () => {
    const r = new Recycler(1024, 4);
    const a = r.take(600);
    r.give(new Uint8Array(8));
    r.give(Buffer.alloc(600));
    r.take(600); // the first block is retired with a still out
    const next = r.take(600);
    assert.notEqual(next.buffer, a.buffer);
    assert.equal(r.stats.reused, 0);
  });

  test('at most maxFree blocks wait for reuse', () => {
    const r = new Recycler(1024, 1);
    const views = [r.take(1000), r.take(1000), r.take(1000)];
    for (const v of views) r.give(v);
    r.take(1000);
    r.take(1000);
    r.take(1000);
    assert.equal(r.stats.reused, 1);
  });

  test('a request larger than a block is a caller bug', () => {
    assert.throws(() => new Recycler(64, 1).take(65), RangeError);
  });
});
