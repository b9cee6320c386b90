"""Writing the user's files safely.

- :func:`check_output` runs before any work: an output path must not be empty, must
  not be one of the command's inputs (compared after resolving symlinks), and must
  not replace an existing file that aicircle did not write unless the user says
  ``--force``.
- :func:`write_atomic` writes through a temporary file renamed into place, so an
  interrupted run leaves the previous file, never half of a new one. ``-`` means
  standard output; a device or FIFO is written through, never replaced; a symlink
  is followed (its target is replaced, the link kept); an existing file keeps its
  permissions.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from .errors import InvalidInput

STDOUT = "-"


def is_stdout(path) -> bool:
    return str(path) == STDOUT


def _special(path: Path) -> bool:
    """Whether ``path`` is (or leads to) something other than a regular file: a device, FIFO, socket."""
    if str(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path, arg: str, inputs=(), force: bool = False, owned=None) -> None:
    """Refuse an output path that would destroy something of the user's.

    Parameters
    ----------
    path : str or pathlib.Path
        The output as given (``-`` is standard output and always acceptable).
    arg : str
        The option that named it (``--out``), for the message.
    inputs : iterable of (str, path)
        The command's input files, each with the name of its option.
    force : bool
        Replace an existing file that aicircle did not write.
    owned : callable, optional
        ``owned(path) -> bool``: whether an existing file is one of aicircle's own
        outputs of this kind (those are replaced without ``--force``).
    """
    if path is None:
        return
    text = str(path)
    if not text.strip():
        raise InvalidInput(f"{arg} is empty; give a file name (or '-' for standard output)")
    if is_stdout(text):
        return
    p = Path(text)
    for label, inp in inputs:
        if inp is not None and str(inp).strip() and Path(inp).exists() and _same_file(p, Path(inp)):
            raise InvalidInput(f"{arg} {text} is the input {label} {inp}; refusing to overwrite it")
    if _special(p):
        return
    if p.is_dir():
        raise InvalidInput(f"{arg} {text} is a folder, not a file")
    if p.exists() and not force and not (owned is not None and owns(owned, p)):
        raise InvalidInput(f"{arg} {text} exists and was not written by aicircle; use --force to "
                           f"replace it")


def owns(owned, path) -> bool:
    """``owned(path)``, False when the file cannot be read as that kind."""
    try:
        return bool(owned(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def _head(path: Path, n: int = 4096) -> str:
    with open(path, "rb") as f:
        return f.read(n).decode("utf-8", errors="replace")


def owned_run_csv(path: Path) -> bool:
    """A CSV written by ``aicircle run``: its header starts with the ``time`` index."""
    return _head(path, 256).split(",", 1)[0].strip() == "time"


def owned_json(path: Path) -> bool:
    """A JSON file written by ``validate``, ``tipping``, ``sensitivity``, ``loops`` or ``check``
    (docs/design.md §5)."""
    if path.stat().st_size > 256 * 2**20:
        return False
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, list):  # validate: one object per target
        return all(isinstance(r, dict) and {"id", "predicted"} <= set(r) for r in data)
    return isinstance(data, dict) and ({"param", "folds"} <= set(data) or
                                       {"method", "indices"} <= set(data) or
                                       {"loops", "dominance"} <= set(data) or
                                       {"model", "findings"} <= set(data))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def owned_png(path: Path) -> bool:
    """A PNG written by aicircle: its metadata (a tEXt chunk before the image data) says
    ``Software: aicircle`` (:func:`aicircle.plots.save`)."""
    head = Path(path).read_bytes()[:65536]
    return head.startswith(PNG_SIGNATURE) and b"tEXtSoftware\x00aicircle" in head.split(b"IDAT", 1)[0]


def owned_fit(path: Path) -> bool:
    """The ``fit.json`` that ``aicircle calibrate`` writes beside its results."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return isinstance(data, dict) and "seed" in data and "statistics" in data


def owned_xmile(path: Path) -> bool:
    """An XMILE file written by ``aicircle export-xmile``."""
    return "<vendor>aicircle</vendor>" in _head(path)


def write_atomic(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file, then put it at ``path``.

    A regular file (or a new one) is replaced by renaming the temporary file
    beside it, keeping the old file's permissions; a symlink is followed and its
    target replaced; standard output (``-``), a device or a FIFO is written
    through. Returns ``path``.
    """
    text = str(path)
    if not text.strip():
        raise InvalidInput("cannot write to an empty path")
    if is_stdout(text) or _special(Path(text)):
        _write_through(text, write)
        return Path(text)
    target = Path(os.path.realpath(text))  # a symlink: replace its target, keep the link
    if target.is_dir():
        raise InvalidInput(f"cannot write {text}: it is a folder")
    if not target.parent.is_dir():
        raise InvalidInput(f"cannot write {text}: folder {Path(text).parent} does not exist")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(text)


def _write_through(text: str, write) -> None:
    """Write into a temporary file, then copy it to stdout, a device or a FIFO."""
    fd, tmp = tempfile.mkstemp(prefix=".aicircle.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as src:
            if is_stdout(text):
                sys.stdout.flush()
                shutil.copyfileobj(src, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with open(text, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
