"""The events of an answer (or a draft), as the serving worker publishes them and the web replays them."""

from collections.abc import Iterator
from dataclasses import dataclass

from features.grounding.generate import CUT_MARK


@dataclass
class Event:
    # "queue" (the place in line: the web side only), "sources", "mode", "token", "notice", "grounding", "done",
    # "error", "revoked" (chat/following.py)
    kind: str
    data: object


def replay_events(answer) -> Iterator[Event]:
    """A finished answer's events from the database (a reconnect, a late follower)."""
    yield Event("sources", answer.sources)
    if answer.status == answer.Status.FAILED:
        yield Event("error", answer.error)
        return
    if answer.content:
        yield Event("token", answer.content)
        if answer.notice:
            yield Event("notice", answer.notice)
        yield Event("grounding", answer)
    yield Event("done", answer)


def final_events(answer) -> Iterator[Event]:
    if answer.status == answer.Status.FAILED:
        yield Event("error", answer.error)
    else:
        yield Event("grounding", answer)
        yield Event("done", answer)


def stream_into(answer, stream) -> Iterator[Event]:
    """Token events from a generation stream, added to the answer as they come; returns the Generation
    (a cut answer ends with CUT_MARK: it says it was cut, not that it ended)."""
    while True:
        try:
            piece = next(stream)
        except StopIteration as finished:
            generation = finished.value
            break
        answer.content += piece
        yield Event("token", piece)
    if generation.needs_cut_mark:
        answer.content = answer.content.rstrip() + CUT_MARK
        yield Event("token", CUT_MARK)
    return generation
