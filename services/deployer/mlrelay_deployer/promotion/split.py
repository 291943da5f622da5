"""Traffic splits: the champion's share scaled down beside a canary, in whole percents."""

from __future__ import annotations

from mlrelay.ports.protocols import EndpointState


def canary_split(previous: dict[str, int], canary_percent: int) -> dict[str, int]:
    """`previous` scaled down in proportion to leave `canary_percent` free: integer percents
    summing to `100 - canary_percent` (largest remainder; a tie goes to the larger share, then
    the smaller id). Every id of `previous` keeps a key, at 0 if its share rounds away."""
    free = 100 - canary_percent
    total = sum(previous.values())
    if total <= 0:
        return {}
    exact = {key: value * free / total for key, value in previous.items()}
    split = {key: int(share) for key, share in exact.items()}
    left = free - sum(split.values())
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - split[k]), -previous[k], k))
    for key in by_remainder[:left]:
        split[key] += 1
    return split


def champion_run(state: EndpointState, traffic: dict[str, int]) -> str | None:
    """The run of the deployed model with the most of `traffic` (None: none, or not deployed by
    mlrelay)."""
    if not traffic:
        return None
    top = max(sorted(traffic), key=lambda key: traffic[key])
    runs = {deployed.id: deployed.run_id for deployed in state.deployed}
    return runs.get(top)
