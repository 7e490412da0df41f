"""A heartbeat: an action repeated from a thread while a block of work runs.

Long work (a model load, a training step, a generation) gives the interpreter back to
no one for minutes; a thread that beats on its own keeps a liveness mark fresh whatever
the work is doing, so a sweeper can tell a slow job from a dead one.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def beating(
    every_seconds: float, beat: Callable[[], object], name: str, *, on_exit: Callable[[], object] | None = None
):
    """Call `beat` every `every_seconds` while the block runs. A failing beat is logged and ends the
    beating (the work goes on); `on_exit` runs in the thread as it ends (e.g. to close its connections)."""
    stop = threading.Event()

    def run():
        try:
            while not stop.wait(every_seconds):
                beat()
        except Exception:
            logger.exception("heartbeat %s stopped", name)
        finally:
            if on_exit is not None:
                on_exit()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
