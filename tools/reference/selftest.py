"""The runner shared by the reference's self-test scripts: a fresh temporary folder, a setup step, every test run
even after a failure, and a summary line. Returns the process exit status."""

import shutil
import tempfile
import time
import traceback


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
