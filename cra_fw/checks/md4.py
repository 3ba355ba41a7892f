"""MD4 (RFC 1320), for Samba NT password hashes: OpenSSL 3 no longer offers it."""

from __future__ import annotations

from collections.abc import Callable

_MASK = 0xFFFFFFFF


def _f(x: int, y: int, z: int) -> int:
    return (x & y) | (~x & z)


def _g(x: int, y: int, z: int) -> int:
    return (x & y) | (x & z) | (y & z)


def _h(x: int, y: int, z: int) -> int:
    return x ^ y ^ z


def _rol(v: int, s: int) -> int:
    v &= _MASK
    return ((v << s) | (v >> (32 - s))) & _MASK


# The three rounds of RFC 1320: function, constant, word order, shifts.
_ROUNDS: tuple[tuple[Callable[[int, int, int], int], int, tuple[int, ...], tuple[int, ...]], ...] = (
    (_f, 0, tuple(range(16)), (3, 7, 11, 19)),
    (_g, 0x5A827999, (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), (3, 5, 9, 13)),
    (_h, 0x6ED9EBA1, (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15), (3, 9, 11, 15)),
)


def md4(data: bytes) -> bytes:
    """The 16-byte MD4 digest of ``data``."""
    msg = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + (len(data) * 8).to_bytes(8, "little")
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + i : off + i + 4], "little") for i in range(0, 64, 4)]
        v = list(state)  # a, b, c, d
        for func, const, order, shifts in _ROUNDS:
            for i, k in enumerate(order):
                # step i updates a, d, c, b in turn, each from the other three in rotation
                t = (-i) % 4
                v[t] = _rol(
                    v[t] + func(v[(t + 1) % 4], v[(t + 2) % 4], v[(t + 3) % 4]) + x[k] + const, shifts[i % 4]
                )
        state = [(s + n) & _MASK for s, n in zip(state, v, strict=True)]
    return b"".join(s.to_bytes(4, "little") for s in state)


def nt_hash(password: str) -> str:
    """The Samba/Windows NT hash of ``password``: MD4 of its UTF-16LE bytes, upper-case hex."""
    return md4(password.encode("utf-16-le")).hex().upper()
