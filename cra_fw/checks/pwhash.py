"""Password hashing for default-credential recovery, through libxcrypt (ctypes).

Why libxcrypt and not Python's ``crypt`` module or PyPI libraries: ``crypt`` is gone
from Python 3.13; passlib is unmaintained and has no yescrypt; bcrypt-only or
scrypt-only packages cover one scheme each.  libxcrypt (``libcrypt.so.1``, Debian
``libcrypt1``, present on every glibc system because PAM/shadow use it) implements
every scheme found in firmware shadow files: DES, bigcrypt-free traditional DES,
MD5-crypt, SHA-256/512-crypt, bcrypt (2a/2b/2y) and yescrypt, with the same code
the device's own login uses.  ``crypt_rn`` is re-entrant, and ctypes releases the
GIL during the call, so hashes run in parallel threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from dataclasses import dataclass

from cra_fw.errors import CraFwError

CRYPT_DATA_SIZE = 32768  # sizeof(struct crypt_data) in libxcrypt


class HashBackendUnavailable(CraFwError):
    """libxcrypt cannot be loaded."""


@dataclass(frozen=True)
class Scheme:
    name: str  # des, md5, sha256, sha512, bcrypt, yescrypt, ...
    weak: bool  # broken or fast enough to brute-force offline
    cost: int  # relative hashing cost (1 = one MD5-crypt), used to bound the candidate list


_DES_RE = re.compile(r"^[./0-9A-Za-z]{13}$")
_ROUNDS_RE = re.compile(r"^\$[56]\$rounds=(\d+)\$")
_BCRYPT_RE = re.compile(r"^\$2[abxy]?\$(\d\d)\$")
# mosquitto_passwd: $7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512> (libxcrypt's $7$ is scrypt,
# written without the decimal iteration field)
_MOSQUITTO7_RE = re.compile(r"^\$7\$(\d{1,7})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$")


def identify(hash_value: str) -> Scheme | None:
    """The crypt scheme of a hash string, or None for a non-hash (locked, empty, unknown)."""
    h = hash_value
    if h.startswith("$1$"):
        return Scheme("md5-crypt", True, 1)
    if h.startswith("$5$") or h.startswith("$6$"):
        m = _ROUNDS_RE.match(h)
        rounds = int(m.group(1)) if m else 5000
        return Scheme("sha256-crypt" if h[1] == "5" else "sha512-crypt", False, max(1, rounds // 500))
    if h.startswith("$2"):
        m = _BCRYPT_RE.match(h)
        cost = int(m.group(1)) if m else 10
        return Scheme("bcrypt", False, 1 << max(0, cost - 3))
    if h.startswith("$y$"):
        return Scheme("yescrypt", False, 300)
    if h.startswith("$gy$"):
        return Scheme("gost-yescrypt", False, 300)
    m7 = _MOSQUITTO7_RE.match(h)
    if m7:
        return Scheme("pbkdf2-sha512", int(m7.group(1)) < 1000, max(1, int(m7.group(1)) // 100))
    if h.startswith("$7$"):
        return Scheme("scrypt", False, 300)
    if h.startswith("$apr1$"):
        return Scheme("apr1-md5", True, 1)
    if h.startswith("_") and len(h) == 20:
        return Scheme("bsdi-des", True, 1)
    if _DES_RE.match(h):
        return Scheme("des-crypt", True, 1)
    return None


class Crypt:
    """``crypt(3)`` from libxcrypt; one instance per process is enough (thread-safe)."""

    _lib: ctypes.CDLL | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        with Crypt._lock:
            if Crypt._lib is None:
                Crypt._lib = _load()
        self._fn = Crypt._lib.crypt_rn
        self._local = threading.local()

    def hash(self, password: str, setting: str) -> str | None:
        """``crypt(password, setting)``; None when the scheme is unsupported or the setting invalid."""
        if setting.startswith("$apr1$"):
            return apr1(password, setting)
        if _MOSQUITTO7_RE.match(setting):
            return mosquitto_pbkdf2(password, setting)
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = ctypes.create_string_buffer(CRYPT_DATA_SIZE)
        try:
            out = self._fn(password.encode("utf-8"), setting.encode("ascii"), buf, CRYPT_DATA_SIZE)
        except UnicodeEncodeError:
            return None
        if not out:
            return None
        value = out.decode("ascii", "replace")
        return None if value.startswith("*") else value

    def verify(self, password: str, hash_value: str) -> bool:
        got = self.hash(password, hash_value)
        return got is not None and got == hash_value


def _load() -> ctypes.CDLL:
    names = ["libcrypt.so.1", ctypes.util.find_library("crypt") or "", "libcrypt.so.2"]
    last: OSError | None = None
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
            fn = lib.crypt_rn
        except (OSError, AttributeError) as exc:
            last = exc if isinstance(exc, OSError) else OSError(str(exc))
            continue
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
        return lib
    raise HashBackendUnavailable(
        f"libxcrypt (libcrypt.so.1) not found ({last}); install Debian package libcrypt1 "
        "to recover default passwords"
    )


# ---- mosquitto_passwd $7$ (PBKDF2-HMAC-SHA512, 64-byte key) ------------------------------------


def mosquitto_pbkdf2(password: str, setting: str) -> str | None:
    """mosquitto's ``$7$`` hash of ``password`` with the iterations and salt of ``setting``."""
    import base64
    import binascii
    import hashlib

    m = _MOSQUITTO7_RE.match(setting)
    if m is None:
        return None
    iterations, salt_b64 = int(m.group(1)), m.group(2)
    try:
        salt = base64.b64decode(salt_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${salt_b64}${base64.b64encode(key).decode()}"


# ---- Apache APR1 (htpasswd -m): MD5-crypt with another magic; libxcrypt lacks it ----------------

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def apr1(password: str, setting: str) -> str:
    """Apache ``$apr1$`` hash (the MD5-crypt algorithm with magic ``$apr1$``)."""
    import hashlib

    salt = setting[len("$apr1$") :].split("$", 1)[0][:8]
    pw, magic, sb = password.encode(), b"$apr1$", salt.encode()
    alt = hashlib.md5(pw + sb + pw).digest()
    ctx = pw + magic + sb
    for i in range(len(pw)):
        ctx += alt[i % 16 : i % 16 + 1]
    i = len(pw)
    while i:
        ctx += b"\0" if i & 1 else pw[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for r in range(1000):
        c = pw if r & 1 else final
        if r % 3:
            c += sb
        if r % 7:
            c += pw
        c += final if r & 1 else pw
        final = hashlib.md5(c).digest()
    f = final
    parts = [
        (f[0] << 16) | (f[6] << 8) | f[12],
        (f[1] << 16) | (f[7] << 8) | f[13],
        (f[2] << 16) | (f[8] << 8) | f[14],
        (f[3] << 16) | (f[9] << 8) | f[15],
        (f[4] << 16) | (f[10] << 8) | f[5],
    ]
    encoded = "".join(_to64(v, 4) for v in parts) + _to64(f[11], 2)
    return f"$apr1${salt}${encoded}"
