"""The FaultProxy's journal (what bench/cost.py counts from): every request with its method,
path, status, time and, when asked, its bodies; nothing before it is switched on."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from tests.fakes.fault_proxy import FaultProxy
from tests.fakes.server import Answer, LoopbackServer, Request


def _slow(request: Request) -> Answer:
    time.sleep(0.2)
    return Answer(200, b'{"ok": true}')


def _post(url: str, body: bytes) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10):
        pass


def test_the_journal_keeps_each_request_with_its_time_and_bodies() -> None:
    with LoopbackServer(_slow) as upstream:
        proxy = FaultProxy(upstream.address, "peer").start()
        try:
            _post(proxy.url + "/before", b"x")  # not journaled: the journal is off
            proxy.journal, proxy.journal_bodies = [], True
            _post(proxy.url + "/storage/v1/b/bkt/o?x=1", b"hello")
            proxy.fail_next(503)
            try:
                _post(proxy.url + "/again", b"")
            except urllib.error.HTTPError as error:
                assert error.code == 503
        finally:
            proxy.stop()
    assert proxy.journal is not None
    first, second = proxy.journal
    assert (first.method, first.target, first.status) == ("POST", "/storage/v1/b/bkt/o?x=1", 200)
    assert first.seconds >= 0.2  # request start -> answer, the upstream's time included
    assert (first.request_bytes, first.body, first.answer) == (5, b"hello", b'{"ok": true}')
    assert (second.target, second.status) == ("/again", 503)


def test_the_journal_says_when_each_request_came_and_how_long_a_serial_proxy_queued_it() -> None:
    with LoopbackServer(_slow) as upstream:
        proxy = FaultProxy(upstream.address, "bigquery", serial=True).start()
        proxy.journal = []
        began = time.monotonic()
        try:
            posts = [threading.Thread(target=_post, args=(proxy.url + "/q", b"")) for _ in "ab"]
            for post in posts:
                post.start()
            for post in posts:
                post.join()
        finally:
            proxy.stop()
    assert proxy.journal is not None and len(proxy.journal) == 2
    assert all(began <= entry.at <= began + 1.0 for entry in proxy.journal)
    first, second = sorted(proxy.journal, key=lambda entry: entry.waited)
    assert first.waited < 0.1  # it had the upstream to itself
    assert second.waited >= 0.15  # it queued behind the first one's 0.2 s
    assert second.seconds >= second.waited + 0.2
