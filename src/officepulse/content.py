"""Where the shipped content folders (``surveys/``, ``kiosk/``, ``analytics/``) live.

The repository keeps these folders at its top level so that non-programmers can edit them. The
wheel ships them inside the package as ``officepulse/_content/<name>`` (see the hatch
``force-include`` table in ``pyproject.toml``); an editable install or a source checkout has no
``_content`` folder, so we fall back to the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["content_dir"]

_PACKAGE_DIR = Path(__file__).parent


def content_dir(name: str) -> Path:
    """Return the directory of the shipped content folder ``name`` (e.g. ``"surveys"``).

    Prefers the copy packaged in the wheel; otherwise returns ``<repository>/<name>``. The
    returned path is not guaranteed to exist (a fresh checkout may not have the folder yet).
    """
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        # Only plain folder names: this helper must never resolve to paths outside the content.
        raise ValueError(f"content folder name must be a plain name, got {name!r}")
    packaged = _PACKAGE_DIR / "_content" / name
    if packaged.is_dir():
        return packaged
    # src/officepulse/content.py -> parents[2] is the repository root.
    return Path(__file__).resolve().parents[2] / name
