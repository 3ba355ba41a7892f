"""MD4 (RFC 1320), for Samba NT password hashes: OpenSSL 3 no longer offers it."""

from __future__ import annotations


def md4(data: bytes) -> bytes:
    """The 16-byte MD4 digest of ``data``."""

    def f(x: int, y: int, z: int) -> int:
        return (x & y) | (~x & z)

    def g(x: int, y: int, z: int) -> int:
        return (x & y) | (x & z) | (y & z)

    def h(x: int, y: int, z: int) -> int:
        return x ^ y ^ z

    def rol(v: int, s: int) -> int:
        v &= 0xFFFFFFFF
        return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF

    msg = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + (len(data) * 8).to_bytes(8, "little")
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + i : off + i + 4], "little") for i in range(0, 64, 4)]
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            s = (3, 7, 11, 19)[i % 4]
            if i % 4 == 0:
                a = rol(a + f(b, c, d) + x[i], s)
            elif i % 4 == 1:
                d = rol(d + f(a, b, c) + x[i], s)
            elif i % 4 == 2:
                c = rol(c + f(d, a, b) + x[i], s)
            else:
                b = rol(b + f(c, d, a) + x[i], s)
        for i, k in enumerate((0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)):
            s = (3, 5, 9, 13)[i % 4]
            if i % 4 == 0:
                a = rol(a + g(b, c, d) + x[k] + 0x5A827999, s)
            elif i % 4 == 1:
                d = rol(d + g(a, b, c) + x[k] + 0x5A827999, s)
            elif i % 4 == 2:
                c = rol(c + g(d, a, b) + x[k] + 0x5A827999, s)
            else:
                b = rol(b + g(c, d, a) + x[k] + 0x5A827999, s)
        for i, k in enumerate((0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)):
            s = (3, 9, 11, 15)[i % 4]
            if i % 4 == 0:
                a = rol(a + h(b, c, d) + x[k] + 0x6ED9EBA1, s)
            elif i % 4 == 1:
                d = rol(d + h(a, b, c) + x[k] + 0x6ED9EBA1, s)
            elif i % 4 == 2:
                c = rol(c + h(d, a, b) + x[k] + 0x6ED9EBA1, s)
            else:
                b = rol(b + h(c, d, a) + x[k] + 0x6ED9EBA1, s)
        a, b, c, d = (
            (a + aa) & 0xFFFFFFFF,
            (b + bb) & 0xFFFFFFFF,
            (c + cc) & 0xFFFFFFFF,
            (d + dd) & 0xFFFFFFFF,
        )
    return b"".join(v.to_bytes(4, "little") for v in (a, b, c, d))


def nt_hash(password: str) -> str:
    """The Samba/Windows NT hash of ``password``: MD4 of its UTF-16LE bytes, upper-case hex."""
    return md4(password.encode("utf-16-le")).hex().upper()
