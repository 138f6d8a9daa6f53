"""Verdict-preserving fast path for the Autobahn fuzzing client's UTF-8 validator.

Without wsaccel (whose C validator the Python 3 port cannot use), autobahn's pure-Python DFA
validates every text octet the suite receives, which is most of the client's CPU time in the
permessage-deflate groups 12 and 13. This module wraps ``Utf8Validator.validate``:

* when the validator is between code points and the chunk's prefix up to its last lead byte
  decodes with CPython's strict UTF-8 codec (which accepts exactly RFC 3629, the language of
  the DFA: no overlongs, no surrogates, nothing above U+10FFFF), that prefix is accounted for
  at once and only the remaining tail (at most 4 octets) goes through the original DFA;
* anything else (an invalid octet anywhere, a code point split before the chunk) goes through
  the original DFA unchanged, so failure positions and fail-fast behaviour are the DFA's own.

It is loaded from a .pth file that `cargo xtask` drops into its own Autobahn venv, and patches
the class when autobahn imports it.
"""

import importlib.abc
import importlib.machinery
import sys

TARGET = "autobahn.websocket.utf8validator"
MIN_FAST = 64


def _patch(module):
    cls = module.Utf8Validator
    if getattr(cls, "_h2ws_fast", False) or not hasattr(cls, "validate"):
        return
    accept = module.UTF8_ACCEPT
    original = cls.validate

    def validate(self, ba):
        if isinstance(ba, str):
            ba = ba.encode("latin-1")
        n = len(ba)
        if self.state != accept or n < MIN_FAST:
            return original(self, ba)
        # Cut before the last lead octet: its sequence may continue in the next chunk.
        cut = n - 1
        while cut > 0 and n - cut <= 4 and (ba[cut] & 0xC0) == 0x80:
            cut -= 1
        try:
            bytes(ba[:cut]).decode("utf-8")
        except UnicodeDecodeError:
            return original(self, ba)
        self.i += cut
        valid, ends, current, total = original(self, ba[cut:])
        return valid, ends, cut + current, total

    cls._h2ws_original = original
    cls.validate = validate
    cls._h2ws_fast = True


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


sys.meta_path.insert(0, _Finder())
