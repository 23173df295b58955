"""Generated datasets in a cache folder: made once, never seen half-written.

Both generated datasets (the built-in one and the benchmark's photos) are written into a
temporary sibling folder and renamed into place once complete, with a marker file holding
what was generated; when processes race, the first rename wins and the others throw their
copy away. A folder whose marker says something else is refused, not overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def ensure_generated(
    root: Path, marker: str, fingerprint: dict[str, Any], generate: Callable[[Path], None]
) -> Path:
    """``root``, first made by ``generate(tmp)`` unless ``root/marker`` holds ``fingerprint``.

    ``generate`` fills the empty folder ``tmp``; the marker is written after it returns.
    """
    if is_complete(root, marker, fingerprint):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    tmp = root.parent / f".{root.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        tmp.mkdir()
        generate(tmp)
        (tmp / marker).write_text(json.dumps(fingerprint, sort_keys=True) + "\n")
        try:
            if root.is_dir() and not any(root.iterdir()):
                root.rmdir()  # an empty folder holds nothing to lose and would block the rename
            os.replace(tmp, root)
        except OSError:
            if not is_complete(root, marker, fingerprint):  # else another process won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def is_complete(root: Path, marker: str, fingerprint: dict[str, Any]) -> bool:
    """Whether ``root`` is a finished folder of ``fingerprint``; refuses another's folder."""
    path = root / marker
    if not path.is_file():
        if root.exists() and any(root.iterdir()):
            raise RuntimeError(
                f"{root} exists but was not written by lit_alexnet's generator (no {marker}); "
                "delete it to regenerate"
            )
        return False
    found = path.read_text().strip()
    if json.loads(found) != fingerprint:
        raise RuntimeError(f"{root} holds a different dataset ({found}); delete it to regenerate")
    return True


def _remove_stale_temps(root: Path) -> None:
    """Delete temporary folders left by killed runs on this host (live ones are in use)."""
    prefix = f".{root.name}.tmp-"
    for path in root.parent.glob(prefix + "*"):
        parts = path.name[len(prefix) :].rsplit("-", 2)  # host (may hold "-"), pid, token
        host, pid = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
        # Another machine's, on a shared file system, is not ours to judge.
        if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_cache_dir() -> Path:
    """``$LIT_ALEXNET_CACHE``, else ``~/.cache/lit_alexnet`` (the training config's default)."""
    return Path(os.environ.get("LIT_ALEXNET_CACHE") or "~/.cache/lit_alexnet").expanduser()
