"""Silencing converters: they print progress, warnings and deprecation notes on stdout/stderr.

The CLI promises one line on stderr per problem; whatever a converter prints is noise there.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Iterator


@contextlib.contextmanager
def silenced(*loggers: str) -> Iterator[None]:
    """Swallow stdout, stderr, Python warnings and the named loggers below ERROR."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
