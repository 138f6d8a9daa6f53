"""Differential check of h2ws_fast_utf8 against the original DFA: every chunking of valid and
invalid UTF-8 must give the same (valid, endsOnCodePoint, currentIndex, totalIndex) quads.
Run with the Autobahn venv and PYTHONPATH=$AUTOBAHN_HOME/src; exits non-zero on a mismatch."""

import random
import sys

import h2ws_fast_utf8  # noqa: F401  (installs the patch before autobahn is imported)
from autobahn.websocket.utf8validator import Utf8Validator

assert getattr(Utf8Validator, "_h2ws_fast", False), "patch not applied"
original = Utf8Validator._h2ws_original

SAMPLES = [
    "plain ascii " * 20,
    "κόσμε Grüße 你好 🌍 " * 30,
    "\U0010ffff\u0800\u07ff\x7f" * 40,
]
BAD = [
    b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf5", b"\xff",
    b"\x80", b"\xbf\xbf", b"\xce", b"\xe2\x82", b"\xf0\x9f\x8c",
]


def run(chunks, fast):
    v = Utf8Validator()
    out = []
    for c in chunks:
        r = v.validate(c) if fast else original(v, c)
        out.append(r)
        if not r[0]:
            break
    return out


def main():
    rng = random.Random(7)
    cases = 0
    for _ in range(4000):
        data = bytearray(rng.choice(SAMPLES).encode())
        for _ in range(rng.randrange(3)):
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice(BAD)
        data = bytes(data)
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(5)))
        chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        fast, slow = run(chunks, True), run(chunks, False)
        if fast != slow:
            print("MISMATCH", data, cuts, fast, slow)
            return 1
        cases += 1
    print(f"h2ws_fast_utf8: {cases} chunked inputs agree with the DFA")
    return 0


sys.exit(main())
