"""The fast tier stays in process: a unit test that starts a child process or listens on a port
fails, naming what it started (move it to tests/integration). Threads that were running before
the test began (an earlier tier's leftovers) are not held against it."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import croniter  # noqa: F401  (see below)
import pytest

# croniter's import runs `file` once (platform.architecture()): imported here, before the watch
# is on, it does so outside whichever test is the first to check a cron.

PROCESS_EVENTS = {"subprocess.Popen", "os.posix_spawn", "os.fork", "os.system", "os.exec"}


class Watch:
    def __init__(self) -> None:
        self.on = False
        self.earlier: set[int] = set()  # idents of the threads running before the test
        self.started: list[str] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.on or threading.get_ident() in self.earlier:
            return
        if event in PROCESS_EVENTS:
            self.started.append(f"{event}: {(args[0] if args else '')!r:.120}")
        elif event == "socket.bind" and args[0].family in (socket.AF_INET, socket.AF_INET6):
            self.started.append(f"a server on {args[1]!r}")


WATCH = Watch()
sys.addaudithook(WATCH)


@pytest.fixture(autouse=True)
def _stays_in_process() -> Iterator[None]:
    main = threading.main_thread().ident
    WATCH.earlier = {t.ident for t in threading.enumerate() if t.ident != main and t.ident}
    WATCH.started, WATCH.on = [], True
    try:
        yield
    finally:
        WATCH.on = False
    if WATCH.started:
        pytest.fail(
            "a unit test starts no process and serves no port (tests/integration is for those): "
            + "; ".join(WATCH.started),
            pytrace=False,
        )
