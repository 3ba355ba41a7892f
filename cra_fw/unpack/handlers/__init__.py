"""cra-fw's own unpack handlers, one format per module.

Each module holds one :class:`cra_fw.unpack.native.NativeHandler`; the registry is the
``NATIVE_HANDLERS`` tuple in ``cra_fw/unpack/native.py`` (one line per handler).  The
binary layouts shared with the verifiers are read by ``cra_fw/parsers``.
"""
