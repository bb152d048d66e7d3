#!/usr/bin/env python3
"""Writes malformed Ethernet frames onto a tap from inside its namespace.

Usage: malformed-flood.py IFACE COUNT SECONDS

Runs only inside the private namespace the test creates: the frames go out
of the tap, to rxslirp, and nowhere else. Bounded by COUNT frames and
SECONDS of wall time. Prints how many frames it sent.
"""
import os
import random
import socket
import struct
import sys
import time

iface, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = random.Random(1234)
GW = bytes.fromhex("52550a000202")
ME = bytes.fromhex("020000000001")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(payload, proto=1, fix=True, total=None, vihl=0x45):
    h = bytearray(struct.pack("!BBHHHBBH4s4s", vihl, 0, total or 20 + len(payload), 1, 0x4000,
                              64, proto, 0, bytes([10, 0, 2, 100]), bytes([10, 0, 2, 2])))
    if fix:
        h[10:12] = struct.pack("!H", csum(bytes(h)))
    return bytes(h) + payload


def eth(ethertype, payload, dst=GW):
    return dst + ME + struct.pack("!H", ethertype) + payload


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def frame(i):
    kind = i % 9
    if kind == 0:  # IPv4 with a wrong header checksum
        p = bytearray(ipv4(b"\x08\0\0\0\0\1\0\1" + rand(16)))
        p[10] ^= 0xFF
        return eth(0x0800, bytes(p))
    if kind == 1:  # total length beyond the frame
        return eth(0x0800, ipv4(rand(8), total=1400))
    if kind == 2:  # not version 4
        return eth(0x0800, ipv4(rand(8), vihl=0x65))
    if kind == 3:  # random bytes as IPv4
        return eth(0x0800, rand(rng.randint(0, 60)))
    if kind == 4:  # truncated ARP
        return eth(0x0806, rand(rng.randint(0, 27)), dst=b"\xff" * 6)
    if kind == 5:  # ARP with a bad hardware type
        return eth(0x0806, struct.pack("!HHBBH", 7, 0x0800, 6, 4, 1) + rand(20), dst=b"\xff" * 6)
    if kind == 6:  # ICMP echo with a wrong ICMP checksum
        return eth(0x0800, ipv4(b"\x08\0\xde\xad\0\1\0\1" + rand(32)))
    if kind == 7:  # unknown EtherType
        return eth(0x88B5, rand(46))
    return eth(0x0800, ipv4(rand(rng.randint(0, 40)), proto=rng.choice([2, 47, 132, 255])))


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
deadline = time.monotonic() + seconds
sent = failed = 0
for i in range(count):
    if time.monotonic() > deadline:
        break
    if i % 50 == 49:
        time.sleep(0.005)  # at most ~10k frames/s: the tap queue must not overflow
    try:
        s.send(frame(i))
        sent += 1
    except OSError:
        failed += 1
        time.sleep(0.001)
print(f"flood: sent {sent} frames, {failed} refused by the kernel", flush=True)
