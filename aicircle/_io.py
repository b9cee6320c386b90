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
- :func:`read_capped` reads a file the user named, bounded by the bytes it reads (a
  device or ``/proc`` file says nothing true in ``st_size``).
- A report folder: :func:`check_destination`, :func:`acquire_lock` (atomic, by
  ``link``), :func:`remove_stale_partials` and :func:`publish`. The report's
  ``manifest.json`` carries the hashes of its files and an HMAC signature with a key
  kept in the user's cache folder (:func:`manifest_key`); a manifest that does not
  verify is foreign, and only files that still match their signed hash are the
  report's to replace or remove.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

from .errors import AicircleError, InvalidInput

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


# --------------------------------------------------------------------------
# reading the user's files: bounded by the bytes actually read
# --------------------------------------------------------------------------

def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def read_capped(path, cap: int, what: str, error=InvalidInput, regular: bool = False) -> bytes:
    """The bytes of ``path``, refused (``error``) beyond ``cap`` bytes.

    The cap is enforced on the bytes read, not on ``st_size``: a device
    (``/dev/zero``), a FIFO or a ``/proc`` file, whose size says nothing, stops
    after ``cap + 1`` bytes. ``what`` names the file in the message (as the user
    wrote it); the message never shows what the file holds.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{what}: no such file") from None
    except IsADirectoryError:
        raise error(f"{what}: cannot be read (it is a folder)") from None
    except OSError as err:
        raise error(f"{what}: cannot be read ({err.strerror or type(err).__name__})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{what}: cannot be read (it is a folder)")
        if regular and not stat.S_ISREG(info.st_mode):
            raise error(f"{what}: not a regular file (a device, FIFO or socket)")
        if stat.S_ISREG(info.st_mode) and info.st_size > cap:  # refused before reading a byte
            raise error(f"{what}: {_mib(info.st_size)} is more than such a file may be (at most {_mib(cap)})")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= cap:
            try:
                chunk = os.read(fd, min(2**20, cap + 1 - total))
            except OSError as err:
                raise error(f"{what}: cannot be read ({err.strerror or type(err).__name__})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise error(f"{what}: more than {_mib(cap)} read and not at its end: more than such a file "
                        f"may be (at most {_mib(cap)})")
        return b"".join(chunks)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# a folder of outputs (the report): its signed manifest, its lock, publishing
# --------------------------------------------------------------------------

#: The lock beside a report folder ``dest`` is ``.{dest.name}{LOCK_NAME}``.
LOCK_NAME = ".aicircle-report.lock"
MANIFEST = "manifest.json"
#: The manifest's signature: HMAC-SHA256 over its canonical JSON (the hashes of the files included).
_KEY_FILE = "manifest.key"
_KEY_BYTES = 32


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/aicircle``, else ``~/.cache/aicircle`` (a relative XDG_CACHE_HOME is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aicircle"


def _read_key(path: Path):
    """The key in ``path`` if it is a private regular file of this user holding a key, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077
                or info.st_size != _KEY_BYTES):
            return None
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    return key if len(key) == _KEY_BYTES else None


def manifest_key(create: bool = False):
    """The key that signs the report's manifests, kept in :func:`cache_dir` (mode 0600).

    Without ``create``, None when there is none (then no manifest verifies). With
    it, a missing key is made (written to a temporary file, then linked into
    place, so two reports starting at once agree on one key); a key file that is
    not a private regular file of this user is refused.
    """
    folder = cache_dir()
    path = folder / _KEY_FILE
    key = _read_key(path)
    if key is not None or not create:
        return key
    if os.path.lexists(path):
        raise InvalidInput(f"the report's signing key {path} is not a private file of yours (mode 0600, "
                           f"{_KEY_BYTES} bytes); remove it and run again")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".key", dir=folder)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another report made it first: use that one
                pass
        finally:
            os.unlink(tmp)
    except OSError as err:
        raise InvalidInput(f"cannot keep the report's signing key in {folder} ({err.strerror or err}); "
                           f"set XDG_CACHE_HOME to a folder you can write") from None
    key = _read_key(path)
    if key is None:
        raise InvalidInput(f"the report's signing key {path} is not a private file of yours; remove it")
    return key


def _file_hash(path: Path):
    """sha256 of a regular file, or of a folder's regular files (names and contents); None otherwise."""
    if path.is_symlink():
        return None
    h = hashlib.sha256()
    if path.is_dir():
        for sub in sorted(path.rglob("*")):
            if sub.is_symlink() or not (sub.is_file() or sub.is_dir()):
                return None
            if sub.is_file():
                h.update(sub.relative_to(path).as_posix().encode() + b"\0" + _file_hash(sub).encode() + b"\0")
        return "dir:" + h.hexdigest()
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=float).encode()


def sign_manifest(folder: Path) -> None:
    """Add to ``folder/manifest.json`` the hashes of the files it lists and its signature."""
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    names = [str(n) for n in manifest.get("files", []) if _plain_name(n) and n != MANIFEST]
    manifest["hashes"] = {n: _file_hash(Path(folder) / n) for n in names if (Path(folder) / n).exists()}
    manifest["signature"] = hmac.new(manifest_key(create=True), _canonical(manifest), hashlib.sha256).hexdigest()
    path.write_text(json.dumps(manifest, indent=2, default=float), encoding="utf-8")


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name \
        and "\0" not in name


def owned_files(dest: Path) -> set:
    """Names in ``dest`` an earlier report wrote and nobody changed since, with its manifest.

    Only a manifest whose signature verifies with this user's key
    (:func:`manifest_key`) is the project's; and of the files it lists, only
    those whose content still has the hash it recorded. Anything else is
    foreign: never replaced, never removed.
    """
    dest = Path(dest)
    key = manifest_key()
    path = dest / MANIFEST
    if key is None or path.is_symlink() or not path.is_file():
        return set()
    try:
        manifest = json.loads(read_capped(path, 16 * 2**20, str(path)).decode("utf-8"))
    except (AicircleError, ValueError):
        return set()
    if not isinstance(manifest, dict) or not isinstance(manifest.get("signature"), str):
        return set()
    expected = hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, manifest["signature"]):
        return set()
    hashes = manifest.get("hashes")
    if not isinstance(hashes, dict):
        return set()
    owned = {MANIFEST}
    for name, digest in hashes.items():
        if _plain_name(name) and digest is not None and _file_hash(dest / name) == digest:
            owned.add(name)
    return owned


def check_destination(dest: Path, force: bool) -> None:
    """Refuse a report folder that holds files the report did not write (unless ``force``: kept)."""
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"--out {dest}: exists and is not a folder")
    manifest_key(create=True)  # a cache that cannot hold the key fails now, not after the work
    if not dest.exists() or force:
        return
    owned = owned_files(dest) | {LOCK_NAME}
    foreign = sorted(p.name for p in dest.iterdir() if p.name not in owned)
    if foreign:
        shown = ", ".join(foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise InvalidInput(f"--out {dest}: the folder holds files the report did not write ({shown}); "
                           f"choose another folder or pass --force (they are kept)")


def lock_path(dest: Path) -> Path:
    return dest.parent / f".{dest.name}{LOCK_NAME}"


def _lock_state(lock: Path):
    """``(inode, pid)`` of the lock file (pid 0 when it holds no process id), None when there is none."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink or something unreadable: no owner can be read
        try:
            return os.lstat(lock).st_ino, 0
        except FileNotFoundError:
            return None
    try:
        ino = os.fstat(fd).st_ino
        text = os.read(fd, 32).decode("ascii", errors="replace").strip()
    finally:
        os.close(fd)
    return ino, int(text) if text.isdigit() and 0 < int(text) < 2**31 else 0


def acquire_lock(dest: Path) -> Path:
    """Take the lock beside the report folder ``dest`` (which may not exist yet); returns its path.

    The owner's process id is written to a temporary file, which is then
    hard-linked to the lock's name: the link fails if the lock exists, so at
    most one process holds it and a lock is never seen half-written. A lock
    whose process is gone (a killed report) is taken over by replacing it
    (rename) — but only by the one process that first links the takeover
    marker named after that lock's inode, and only after it has checked again,
    holding the marker, that the lock is still that stale one.
    """
    dest = Path(dest)
    lock = lock_path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}{LOCK_NAME}.", suffix=".new", dir=dest.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        for _ in range(100):
            try:
                os.link(tmp, lock)
                return lock
            except FileExistsError:
                pass
            held = _lock_state(lock)
            if held is None:
                continue  # released meanwhile: try again
            ino, pid = held
            if pid and _alive(pid):
                raise InvalidInput(f"--out {dest}: another report (process {pid}) is writing there; "
                                   f"wait for it, or remove {lock} if none is running")
            if _take_over(lock, Path(tmp), ino):
                return lock
            time.sleep(0.01)  # another process is taking it over: see who won
        raise InvalidInput(f"--out {dest}: cannot take the lock {lock}; remove it if no report is running")
    finally:
        Path(tmp).unlink(missing_ok=True)


def _take_over(lock: Path, mine: Path, ino: int) -> bool:
    marker = lock.with_name(f"{lock.name}.{ino}.takeover")
    try:
        os.link(mine, marker)  # the right to replace the lock whose inode is ``ino``: one process gets it
    except FileExistsError:
        return False
    try:
        held = _lock_state(lock)
        if held is None or held[0] != ino or (held[1] and _alive(held[1])):
            return False  # taken over or released meanwhile
        os.replace(mine, lock)
        return True
    finally:
        marker.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PARTIAL_TAIL = re.compile(r"[A-Za-z0-9_]{8}")  # what tempfile.mkdtemp appends


def remove_stale_partials(dest: Path) -> None:
    """Remove ``.{dest.name}-partial-XXXXXXXX`` folders a killed report left beside ``dest``.

    Call it holding the lock (then no other report writes there). Names are
    compared literally: ``dest``'s name is never a pattern.
    """
    prefix = f".{dest.name}-partial-"
    for entry in dest.parent.iterdir():
        if (entry.name.startswith(prefix) and _PARTIAL_TAIL.fullmatch(entry.name[len(prefix):])
                and entry.is_dir() and not entry.is_symlink()):
            shutil.rmtree(entry, ignore_errors=True)


def publish(work: Path, dest: Path) -> None:
    """Sign ``work``'s manifest and move the report's files into ``dest``.

    Only what the last report owned (:func:`owned_files`) is replaced or
    removed; anything else in ``dest`` is left alone (and a new file of the same
    name is not written).
    """
    sign_manifest(work)
    previous = owned_files(dest) if dest.exists() else set()
    dest.mkdir(parents=True, exist_ok=True)
    new = {p.name for p in work.iterdir()}
    for name in sorted(new - {MANIFEST}) + [MANIFEST]:  # the manifest last
        src, target = work / name, dest / name
        if src.is_dir():
            if target.is_dir() and not target.is_symlink() and name in previous:
                shutil.rmtree(target)
            elif os.path.lexists(target):
                continue  # not ours: never replaced
            src.rename(target)
        else:
            if os.path.lexists(target) and (name not in previous or target.is_dir() or target.is_symlink()):
                continue  # not ours (or not a plain file): never replaced
            os.replace(src, target)
    for name in previous - new:
        stale = dest / name
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
