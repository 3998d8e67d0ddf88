"""Finding photo files under the scanned paths, and why the others are left out.

Paths are handled as bytes (``os.fsencode``) so that names which are not valid UTF-8 work.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .images import is_raw, missing_package
from .names import display_path


# Why a file under the scanned paths was not scanned (``Skipped.reason``).
VIDEO = "video"
LIVE_PHOTO = "Live Photo video"
SIDECAR = "sidecar or metadata file"
ANIMATION = "GIF or animation"
UNSUPPORTED_IMAGE = "image format not supported"
NEEDS_PACKAGE = "format needs a package"
NOT_A_PHOTO = "not a photo"
NOT_A_FILE = "not a regular file"
BROKEN_LINK = "broken symbolic link"
LINK_OUTSIDE = "link to a file outside the scanned folders (scan its folder to include it)"
HIDDEN = "hidden (--hidden scans it)"
RAW_SIBLING = "RAW beside its JPEG (--raw-pairs both scans it)"
TOO_LARGE = "too large"  # decided when decoding (see images.TooLarge)
BUSY = "in use by another phototag process (left for the next scan)"  # see photolock

VIDEO_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".avi", ".mkv", ".3gp", ".mts", ".m2ts", ".wmv", ".webm",
                              ".mpg", ".mpeg"})
SIDECAR_EXTENSIONS = frozenset({".xmp", ".aae", ".thm"})
ANIMATION_EXTENSIONS = frozenset({".gif", ".apng"})
OTHER_IMAGE_EXTENSIONS = frozenset({".bmp", ".jxl", ".psd", ".svg", ".ico", ".jp2", ".exr", ".crw",
                                    ".x3f", ".3fr", ".iiq", ".mrw", ".erf"})


@dataclass(frozen=True)
class Skipped:
    """A file (or hidden folder) under the scanned paths that is not scanned, and why."""

    path: bytes
    reason: str
    detail: str = ""  # e.g. the package a format needs, the claimed size of a huge image
    partner: bytes | None = None  # RAW_SIBLING: the photo scanned in its place

    @property
    def extension(self) -> str:
        """The lower-case extension (``.mov``), or "" for none."""
        return os.path.splitext(self.path)[1].lower().decode("utf-8", "replace")


def skipped_counts(skipped: Iterable[Skipped]) -> dict[str, dict[str, int]]:
    """How many files were skipped for each reason, by extension (most frequent first)."""
    counts: dict[str, Counter] = {}
    for k in skipped:
        counts.setdefault(k.reason, Counter())[k.extension] += 1
    return {reason: dict(c.most_common()) for reason, c in counts.items()}


def walk(
    paths: Iterable[str | os.PathLike | bytes],
    extensions: Iterable[str],
    include_hidden: bool = False,
    on_error: Callable[[bytes, OSError], None] | None = None,
    *,
    on_skip: Callable[[Skipped], None] | None = None,
    pair_raw: bool = False,
) -> Iterator[bytes]:
    """Yield the absolute paths of image files under ``paths`` (files or folders), in a stable order.

    Folders are walked depth-first with entries sorted by name; symbolic links to folders are
    followed, each real folder visited once (link loops end). A link to a file is followed when its
    target is in a folder walked (a folder given, or one reached through a link to it), else skipped
    as ``LINK_OUTSIDE``: its photo would be rewritten, and a killed write's temporary copy left, in
    a folder no scan of these paths visits. Names starting with ``.`` are skipped
    unless ``include_hidden`` (a path given explicitly is always used). Files are chosen by
    extension, case-insensitively. Unreadable folders are passed to ``on_error``, every other
    entry that is not yielded to ``on_skip`` with the reason. ``pair_raw``: a RAW file with a
    non-RAW photo of the same name (case aside) in its folder is skipped as that photo's sibling.
    """
    wanted = {e.lower().encode() for e in extensions}
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[bytes] = set()
    skip = on_skip or (lambda skipped: None)
    roots = [os.path.abspath(os.fsencode(root)) for root in paths]
    trees = [os.path.realpath(root).rstrip(b"/") + b"/" for root in roots if os.path.isdir(root)]

    def inside(path: bytes, follow: bool) -> bool:
        """Whether a link's target is in a folder walked; ``follow``: it is a folder, to be walked."""
        real = os.path.realpath(path).rstrip(b"/") + b"/"
        if follow:
            trees.append(real)
        return follow or any(real.startswith(tree) for tree in trees)

    for root in roots:
        if os.path.isdir(root):
            files = _walk_dir(root, wanted, include_hidden, seen_dirs, on_error, skip, pair_raw, inside)
        elif os.path.islink(root) and not os.path.exists(root):
            skip(Skipped(root, BROKEN_LINK))
            files = iter(())
        elif os.path.exists(root) and not os.path.isfile(root):  # a FIFO or a device: reading it hangs
            skip(Skipped(root, NOT_A_FILE))
            files = iter(())
        elif _has_extension(root, wanted):
            files = iter([root])
        else:
            skip(_not_a_photo(root, {}))
            files = iter(())
        for path in files:
            if path not in seen_files:
                seen_files.add(path)
                yield path


def became_another_link(path, walked: os.stat_result, now: os.stat_result) -> bool:
    """Whether ``path``, the file ``walked`` when walked, is now a link to another file (``now``): put in
    its place after the walk, the link's target was never checked to be in the walked folders."""
    return os.path.islink(path) and (now.st_dev, now.st_ino) != (walked.st_dev, walked.st_ino)


def _walk_dir(root: bytes, wanted: set[bytes], include_hidden: bool, seen_dirs: set[tuple[int, int]],
              on_error: Callable[[bytes, OSError], None] | None, skip: Callable[[Skipped], None],
              pair_raw: bool, inside: Callable[[bytes, bool], bool]) -> Iterator[bytes]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if on_error:
                on_error(folder, e)
            continue
        photos = {}  # lower-case stem -> the first non-RAW photo with it
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in wanted and not is_raw(entry.name) and (include_hidden or not stem.startswith(b".")):
                photos.setdefault(stem.lower(), entry.path)
        subfolders = []
        for entry in entries:
            if entry.name.startswith(b".") and not include_hidden:
                skip(Skipped(entry.path, HIDDEN))
                continue
            try:
                if entry.is_symlink() and os.path.exists(entry.path) and not inside(entry.path, entry.is_dir()):
                    skip(Skipped(entry.path, LINK_OUTSIDE, detail=display_path(os.path.realpath(entry.path))))
                elif entry.is_dir():
                    subfolders.append(entry.path)
                elif not entry.is_file():
                    skip(Skipped(entry.path, BROKEN_LINK if entry.is_symlink() and not os.path.exists(entry.path)
                                 else NOT_A_FILE))
                elif not _has_extension(entry.name, wanted):
                    skip(_not_a_photo(entry.path, photos))
                elif pair_raw and is_raw(entry.name) and (partner := photos.get(_stem(entry.name))):
                    skip(Skipped(entry.path, RAW_SIBLING, partner=partner))
                else:
                    yield entry.path
            except OSError as e:
                if on_error:
                    on_error(entry.path, e)
        stack.extend(reversed(subfolders))


def _not_a_photo(path: bytes, photos: dict[bytes, bytes]) -> Skipped:
    """Why a file with an extension that is not scanned is left out (``photos``: its folder's photos by stem)."""
    stem, ext = os.path.splitext(os.path.basename(path))
    ext = ext.lower().decode("utf-8", "replace")
    if ext in VIDEO_EXTENSIONS:
        if ext == ".mov" and stem.lower() in photos:
            return Skipped(path, LIVE_PHOTO, partner=photos[stem.lower()])
        return Skipped(path, VIDEO)
    if package := missing_package(ext):
        return Skipped(path, NEEDS_PACKAGE, detail=f"pip install {package}")
    if ext in SIDECAR_EXTENSIONS:
        return Skipped(path, SIDECAR)
    if ext in ANIMATION_EXTENSIONS:
        return Skipped(path, ANIMATION)
    if ext in OTHER_IMAGE_EXTENSIONS:
        return Skipped(path, UNSUPPORTED_IMAGE)
    return Skipped(path, NOT_A_PHOTO)


def _stem(name: bytes) -> bytes:
    return os.path.splitext(name)[0].lower()


def _has_extension(name: bytes, wanted: set[bytes]) -> bool:
    return os.path.splitext(name)[1].lower() in wanted


def named_folders(paths: Iterable[str | os.PathLike | bytes]) -> list[bytes]:
    """The absolute paths (bytes) of those of ``paths`` that are folders, in their order."""
    return [os.path.abspath(os.fsencode(p)) for p in paths if os.path.isdir(p)]
