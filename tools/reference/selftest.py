"""What the reference's self-test scripts share: the runner (a fresh temporary folder, a setup step, every test run
even after a failure, and a summary line; it returns the process exit status), the cosine, and scalar float32 / bf16
rounding in pure Python (independent of numerics.py)."""

import math
import shutil
import struct
import tempfile
import time
import traceback

import numpy as np


def run_selftests(tests, setup, prefix, name_width=45):
    """Runs setup(tmp_dir), then each test function; prints PASS/FAIL per test and "N passed, M failed"."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    passed = failed = 0
    try:
        setup(tmp)
        for fn in tests:
            t0 = time.time()
            try:
                fn()
                passed += 1
                print("PASS %-*s %.2fs" % (name_width, fn.__name__, time.time() - t0))
            except Exception:  # report every failure, keep going
                failed += 1
                print("FAIL %s" % fn.__name__)
                traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def cosine(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def py_f32(x):
    """Round a Python float to the nearest float32 (struct packs with round-to-nearest-even)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def py_bf16(x):
    """Nearest bf16 by comparing the two candidate neighbours exactly (ties: even mantissa).
    A different algorithm from numerics.f32_to_bf16_bits (no carry trick)."""
    x = py_f32(x)
    if math.isnan(x) or math.isinf(x):
        return x
    (bits,) = struct.unpack("<I", struct.pack("<f", x))
    lo_bits = bits & 0xFFFF0000
    hi_bits = lo_bits + 0x10000
    lo = struct.unpack("<f", struct.pack("<I", lo_bits))[0]
    if (hi_bits & 0x7F800000) == 0x7F800000:          # next pattern is inf: bf16 max overflows
        hi = math.copysign(math.inf, x)
        limit = math.copysign(2.0 ** 128 - 2.0 ** 119, x)  # halfway between bf16 max and 2^128
        if abs(x) >= abs(limit):
            return hi if abs(x) > abs(limit) or ((lo_bits >> 16) & 1) else lo
        return lo
    hi = struct.unpack("<f", struct.pack("<I", hi_bits))[0]
    d_lo, d_hi = abs(x - lo), abs(hi - x)
    if d_lo < d_hi:
        return lo
    if d_hi < d_lo:
        return hi
    return lo if ((lo_bits >> 16) & 1) == 0 else hi
