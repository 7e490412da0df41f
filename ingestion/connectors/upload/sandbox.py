"""Reading a PDF or a DOCX in a child process, in the sync's worker, never in a web request.

pypdf and lxml can spend minutes and gigabytes on a file of a few kilobytes built for it.
Each file is read by a fresh `python -I parsing.py`, which limits its own CPU time
(TWIN_PARSE_CPU_SECONDS) and address space (TWIN_PARSE_MEMORY_BYTES) before it reads the
file; past a limit the child is stopped and the item fails with the reason. The child gets
no environment (no secrets to leak), may write no file, and has a wall-clock deadline too.
"""

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ..base import ConnectorError
from .parsing import EXIT_OUT_OF_MEMORY

logger = logging.getLogger(__name__)
CHILD = Path(__file__).with_name("parsing.py")
STOPPED_FOR_CPU = (-signal.SIGXCPU, -signal.SIGKILL)  # the soft CPU limit, then the hard one


def _limits(kind: str) -> dict:
    if kind == "pdf":
        return {"max_pages": settings.TWIN_PDF_MAX_PAGES, "max_content_bytes": settings.TWIN_PDF_MAX_CONTENT_BYTES}
    return {"max_xml_bytes": settings.TWIN_DOCX_MAX_XML_BYTES, "max_ratio": settings.TWIN_ZIP_MAX_RATIO}


def read_in_sandbox(kind: str, data: bytes) -> str:
    """The text of a "pdf" or "docx" file; ConnectorError with the reason when it cannot be read."""
    label, cpu = kind.upper(), settings.TWIN_PARSE_CPU_SECONDS
    request = {
        "kind": kind,
        "limits": _limits(kind),
        "cpu_seconds": cpu,
        "memory_bytes": settings.TWIN_PARSE_MEMORY_BYTES,
    }
    too_long = f"That {label} took too long to read (more than {cpu} s of processing); it was stopped."
    try:
        done = subprocess.run(  # noqa: S603 (our own script; the file goes in on stdin, never as an argument)
            [sys.executable, "-I", str(CHILD), json.dumps(request)],
            input=data,
            capture_output=True,
            timeout=2 * cpu + 10,  # CPU time is the limit; this catches a child that waits instead
            env={"PATH": os.defpath},
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConnectorError(too_long) from None
    if done.returncode in STOPPED_FOR_CPU:
        raise ConnectorError(too_long)
    if done.returncode == EXIT_OUT_OF_MEMORY:
        memory = filesizeformat(settings.TWIN_PARSE_MEMORY_BYTES)
        raise ConnectorError(f"That {label} needs more than {memory} of memory to read; it was stopped.")
    try:
        answer = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        logger.warning("reading a %s failed (exit %s): %s", kind, done.returncode, done.stderr[-2000:])
        raise ConnectorError(f"That {label} could not be read (its reader stopped with status {done.returncode}).")
    if "error" in answer:
        raise ConnectorError(str(answer["error"]))
    return str(answer.get("text", ""))
