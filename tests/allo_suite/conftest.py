"""Pytest glue for running Allo's own tests (tests/allo_suite/upstream) against allo_ext.

The main suite must not collect the vendored files (they need the ``allo`` shim on sys.path and
the Allo-syntax loader), so they are only collected when the harness sets ALLO_SUITE_RESULTS,
the JSON file each test's outcome is written to."""
import json
import os
import signal
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.environ.get("ALLO_SUITE_RESULTS")
TIMEOUT = int(os.environ.get("ALLO_SUITE_TIMEOUT", "120"))

if not RESULTS:
    collect_ignore = ["upstream", "shim", "run.py"]
else:
    sys.path.insert(0, os.path.join(HERE, "shim"))
    import allo  # noqa: F401,E402  (installs the Allo-syntax import hook for upstream/)

    _outcomes = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        def on_alarm(signum, frame):
            raise TimeoutError(f"test took longer than {TIMEOUT} s")

        import numpy as np

        np.random.seed(0)  # Allo's tests draw unseeded data: seed it so that runs are reproducible
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(TIMEOUT)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        rep = outcome.get_result()
        if rep.when == "call" or (rep.when == "setup" and not rep.passed):
            exc = call.excinfo
            _outcomes[item.nodeid] = {
                "outcome": rep.outcome,
                "exc_type": None if exc is None else exc.type.__name__,
                "exc_module": None if exc is None else exc.type.__module__,
                "message": None if exc is None else str(exc.value).strip().splitlines()[0][:300]
                if str(exc.value).strip() else exc.type.__name__,
                "seconds": round(rep.duration, 3),
            }

    def pytest_collectreport(report):
        if report.failed:
            _outcomes[report.nodeid or "collect"] = {"outcome": "collect-error", "exc_type": "CollectError",
                                                     "exc_module": "", "message": str(report.longrepr)[-300:],
                                                     "seconds": 0}

    def pytest_sessionfinish(session, exitstatus):
        with open(RESULTS, "w") as f:
            json.dump(_outcomes, f, indent=1)
