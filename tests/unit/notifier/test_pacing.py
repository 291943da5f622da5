"""The channel pacer: one send per channel at a time, spaced from the previous answer."""

from __future__ import annotations

from mlrelay_notifier.pacing import ChannelPacer


def test_pacer_spaces_sends_from_the_previous_answer_and_honours_holds() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = ChannelPacer(1.0, clock=lambda: now[0], sleep=sleep)
    with pacer.turn("c"):
        now[0] += 0.3  # the send takes 0.3 s
    with pacer.turn("c"):  # 1 s after the answer, not after the start
        pass
    with pacer.turn("other"):
        pass
    pacer.hold("c", 10.0)
    with pacer.turn("c"):
        pass
    assert waits == [1.0, 10.0]
    assert now[0] == 11.3
