#!/usr/bin/env python3
"""Independent dequantizer for GGML block formats (stdlib only).

Usage: dequant_ref.py TYPE FILE
  TYPE: q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q8_k
  FILE: raw blocks of that type, back to back (little-endian fields, as in GGUF).
Prints one line per element: the float32 bit pattern as 8 lower-case hex digits.

Written from the block format descriptions (ggml-common.h layouts): for each element it works
out where its code, scale and min live, and evaluates llama.cpp's dequantization formula with
float32 rounding after every operation. Python floats are doubles; a sum, difference or product
of two float32 values computed in double and then rounded to float32 equals the float32 result
(double has more than 2*24+2 significand bits), so f32() after each step reproduces f32 math.
"""

import struct
import sys


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def half(buf, off):
    return struct.unpack_from("<e", buf, off)[0]


def u8(buf, off):
    return buf[off]


def i8(buf, off):
    b = buf[off]
    return b - 256 if b >= 128 else b


def mul(a, b):
    return f32(a * b)


def sub(a, b):
    return f32(a - b)


def add(a, b):
    return f32(a + b)


# ---- 32-element formats ----

def nibble32(qs_off, buf, e):
    """4-bit code of element e (0..31): elements 0..15 are low nibbles, 16..31 high nibbles."""
    byte = buf[qs_off + (e % 16)]
    return (byte & 0x0F) if e < 16 else (byte >> 4)


def fifth_bit(buf, qh_off, e):
    qh = struct.unpack_from("<I", buf, qh_off)[0]
    return (qh >> e) & 1


def q4_0(buf, base, e):
    d = half(buf, base)
    return mul(float(nibble32(base + 2, buf, e) - 8), d)


def q4_1(buf, base, e):
    d, m = half(buf, base), half(buf, base + 2)
    return add(mul(float(nibble32(base + 4, buf, e)), d), m)


def q5_0(buf, base, e):
    d = half(buf, base)
    q = nibble32(base + 6, buf, e) + 16 * fifth_bit(buf, base + 2, e)
    return mul(float(q - 16), d)


def q5_1(buf, base, e):
    d, m = half(buf, base), half(buf, base + 2)
    q = nibble32(base + 8, buf, e) + 16 * fifth_bit(buf, base + 4, e)
    return add(mul(float(q), d), m)


def q8_0(buf, base, e):
    return mul(float(i8(buf, base + 2 + e)), half(buf, base))


# ---- 256-element super-blocks ----

def two_bits(buf, qs_off, e):
    """2-bit code of element e in the q2_K/q3_K packing.

    Each half of 128 elements owns 32 bytes; within a half, element group g = 0..3 of 32
    consecutive elements sits at bit position 2*g of byte (e % 32).
    """
    h, r = divmod(e, 128)
    g = r // 32
    return (buf[qs_off + 32 * h + e % 32] >> (2 * g)) & 3


def q2_k(buf, base, e):
    sc_byte = buf[base + (e // 16)]
    d, dmin = half(buf, base + 80), half(buf, base + 82)
    q = two_bits(buf, base + 16, e)
    return sub(mul(mul(d, float(sc_byte & 15)), float(q)), mul(dmin, float(sc_byte >> 4)))


def q3_k_scale(buf, sc_off, j):
    """6-bit scale of sub-block j (0..15), stored with +32 bias across 12 bytes."""
    if j < 8:
        low = buf[sc_off + j] & 15
    else:
        low = buf[sc_off + j - 8] >> 4
    high = (buf[sc_off + 8 + (j % 4)] >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


def q3_k(buf, base, e):
    d = half(buf, base + 108)
    scale = q3_k_scale(buf, base + 96, e // 16)
    low = two_bits(buf, base + 32, e)
    hbit = (buf[base + (e % 32)] >> (e // 32)) & 1
    q = low - (0 if hbit else 4)
    return mul(mul(d, float(scale)), float(q))


def k4_scale_min(buf, off, j):
    """(scale, min) of sub-block j (0..7) from the 12-byte 6-bit packing of q4_K/q5_K."""
    s = buf[off:off + 12]
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    scale = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4)
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
    return scale, mn


def nibble256(buf, qs_off, e):
    """4-bit code of element e in q4_K/q5_K: 64-element chunks own 32 bytes, low nibble first."""
    chunk, r = divmod(e, 64)
    byte = buf[qs_off + 32 * chunk + (r % 32)]
    return (byte & 15) if r < 32 else (byte >> 4)


def q4_k(buf, base, e):
    d, dmin = half(buf, base), half(buf, base + 2)
    sc, mn = k4_scale_min(buf, base + 4, e // 32)
    q = nibble256(buf, base + 16, e)
    return sub(mul(mul(d, float(sc)), float(q)), mul(dmin, float(mn)))


def q5_k(buf, base, e):
    d, dmin = half(buf, base), half(buf, base + 2)
    sc, mn = k4_scale_min(buf, base + 4, e // 32)
    hbit = (buf[base + 16 + (e % 32)] >> (e // 32)) & 1
    q = nibble256(buf, base + 48, e) + 16 * hbit
    return sub(mul(mul(d, float(sc)), float(q)), mul(dmin, float(mn)))


def q6_k(buf, base, e):
    d = half(buf, base + 208)
    scale = i8(buf, base + 192 + e // 16)
    h, r = divmod(e, 128)
    g, l = divmod(r, 32)
    # Groups 0 and 2 share ql bytes 0..31 of the half, groups 1 and 3 bytes 32..63;
    # groups 0 and 1 use the low nibble.
    lbyte = buf[base + 64 * h + l + (32 if g in (1, 3) else 0)]
    low = (lbyte & 15) if g < 2 else (lbyte >> 4)
    high = (buf[base + 128 + 32 * h + l] >> (2 * g)) & 3
    q = (low + 16 * high) - 32
    return mul(mul(d, float(scale)), float(q))


def q8_k(buf, base, e):
    d = struct.unpack_from("<f", buf, base)[0]
    return mul(d, float(i8(buf, base + 4 + e)))


# type -> (elements per block, bytes per block, element function)
FORMATS = {
    "q4_0": (32, 18, q4_0),
    "q4_1": (32, 20, q4_1),
    "q5_0": (32, 22, q5_0),
    "q5_1": (32, 24, q5_1),
    "q8_0": (32, 34, q8_0),
    "q2_k": (256, 84, q2_k),
    "q3_k": (256, 110, q3_k),
    "q4_k": (256, 144, q4_k),
    "q5_k": (256, 176, q5_k),
    "q6_k": (256, 210, q6_k),
    "q8_k": (256, 292, q8_k),
}


def main():
    if len(sys.argv) != 3 or sys.argv[1].lower() not in FORMATS:
        sys.stderr.write("usage: dequant_ref.py {%s} FILE\n" % ",".join(FORMATS))
        return 2
    elems, nbytes, fn = FORMATS[sys.argv[1].lower()]
    with open(sys.argv[2], "rb") as f:
        buf = f.read()
    if len(buf) % nbytes != 0:
        sys.stderr.write("file size %d is not a multiple of %d\n" % (len(buf), nbytes))
        return 1
    out = []
    for b in range(len(buf) // nbytes):
        base = b * nbytes
        for e in range(elems):
            v = fn(buf, base, e)
            out.append("%08x" % struct.unpack("<I", struct.pack("<f", v))[0])
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
