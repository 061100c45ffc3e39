"""Logging set-up shared by every way of running officepulse.

Lines carry level, logger and message only: no time stamps and no client fields, so that no
log line can be matched against a stored response or the office's appointment calendar.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    """Send log lines of ``level`` and above to standard error."""
    logging.basicConfig(level=level.upper(), format=FORMAT, stream=sys.stderr, force=True)
    # httpx would log every admin-API call; those lines say nothing an operator needs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
