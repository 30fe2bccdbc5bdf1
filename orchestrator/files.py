"""Files orch writes (the HTML report, the config `orch init` writes) are written as files.

A path a person gives may name something that is not a file: ``/dev/full``, a directory,
a FIFO, or a symlink to a file elsewhere. Replacing the path (``os.replace``) would turn a
device node into an HTML page, and writing through a symlink would clobber whatever it
points at. So one rule for every file orch writes: the path must be absent or a regular
file, and not a symlink; it is refused otherwise, before anything is done. The text is
written to a temporary file beside it and renamed over it, so a reader never sees half a
file and a failed write leaves the old one (and its permissions) as they were.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from orchestrator.echo import clip

NEW_FILE_MODE = 0o644  # a new file: readable by others, as a shell's redirection would leave it under the usual umask


class FileRefused(ValueError):
    """The path cannot or must not be written: ``shown`` is the path (cut to 200 characters), ``why`` the reason."""

    def __init__(self, shown: str, why: str) -> None:
        super().__init__(f"{shown}: {why}")
        self.shown, self.why = shown, why


def check_writable(path: str | os.PathLike[str], *, make_parent: bool = False, probe: bool = False) -> Path:
    """``path`` as a Path if orch may write a file there; FileRefused otherwise.

    ``make_parent``: a missing parent directory is fine (``write_text`` creates it).
    ``probe``: also create and remove an empty file beside it, the one sure test (``/proc``
    passes every permission check as root and still refuses a new file); nothing else is written.
    """
    text = os.fspath(path)
    if not text.strip():
        raise FileRefused(repr(text), "no file path given (an empty path)")
    target = Path(text)
    shown = clip(text, quote=False)
    try:
        found = target.lstat()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise FileRefused(shown, f"cannot be examined: {exc.strerror or exc}") from None
    if found is not None:
        if stat.S_ISLNK(found.st_mode):
            raise FileRefused(shown, "is a symlink: orch writes only regular files (give the path it points to, or another)")
        if not stat.S_ISREG(found.st_mode):
            raise FileRefused(shown, f"is not a regular file ({_kind(found.st_mode)}): give a file path")
    parent = _existing_parent(target.parent) if make_parent else target.parent
    if not parent.is_dir():
        raise FileRefused(shown, f"the directory {clip(str(target.parent), quote=False)} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileRefused(shown, f"the directory {clip(str(parent), quote=False)} is not writable")
    if probe and parent == target.parent:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{target.name[:50]}.", suffix=".probe", dir=parent)
        except OSError as exc:
            raise FileRefused(shown, f"cannot be written: {exc.strerror or exc}") from None
        os.close(fd)
        Path(name).unlink(missing_ok=True)
    return target


class Pending:
    """A file's new text, written beside it and not yet renamed over it.

    ``prepare`` does every step that can fail (the path's checks, the directory, the
    disk) before the caller does what cannot be undone (``orch init`` tags instances
    only once its config is ready to land); ``commit`` then renames it into place.
    """

    def __init__(self, target: Path, tmp: Path, shown: str) -> None:
        self.target, self.tmp, self._shown = target, tmp, shown

    def commit(self) -> Path:
        try:
            check_writable(self.target)  # once more: it may have become a symlink or a device since
            os.replace(self.tmp, self.target)
        except FileRefused:
            self.discard()
            raise
        except OSError as exc:
            self.discard()
            raise FileRefused(self._shown, f"cannot be written: {exc.strerror or exc}") from None
        return self.target

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def prepare(path: str | os.PathLike[str], text: str, *, make_parent: bool = False) -> Pending:
    """The checks of ``check_writable`` and the text on disk beside ``path``; FileRefused for any failure."""
    target = check_writable(path, make_parent=make_parent)
    shown = clip(os.fspath(path), quote=False)
    tmp: Path | None = None
    try:
        if make_parent:
            target.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else NEW_FILE_MODE
        fd, name = tempfile.mkstemp(prefix=f".{target.name[:50]}.", suffix=".tmp", dir=target.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise FileRefused(shown, f"cannot be written: {exc.strerror or exc}") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return Pending(target, tmp, shown)


def write_text(path: str | os.PathLike[str], text: str, *, make_parent: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, only if it is absent or a regular file.

    Raises FileRefused for a path that is not one, and for any OSError on the way (a full
    disk, a read-only directory): one line, never a traceback, the old file untouched.
    """
    return prepare(path, text, make_parent=make_parent).commit()


def _existing_parent(directory: Path) -> Path:
    """The nearest directory that exists at or above ``directory`` (where mkdir would start)."""
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
