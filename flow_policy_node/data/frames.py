"""Decoded camera frames for training: in memory, or in a cache on disk read frame by frame.

A dataset's videos are decoded once, when it is opened. Small datasets keep the frames in
memory (a uint8 array per camera). Above ``FrameCacheConfig.disk_above_mb`` of decoded
frames (or with ``store="disk"``) they go to a cache on disk instead: one ``.npy`` file of
(n, h, w, 3) uint8 per camera, and each sample reads its frame with one ``pread`` into a
fresh buffer (:class:`FrameCache`). Nothing is memory-mapped, because the pages of a
mapping count in the process's RSS for as long as they stay resident, and random sampling
touches all of them: a mapping grows to the dataset's size. Read with ``pread``, the RSS
holds only the batch being built; the kernel's page cache keeps what fits in RAM and
frames beyond it come from disk. The files are ordinary ``.npy``:
``np.load(path, mmap_mode="r")`` opens one for inspection.

A cache is reused while the dataset is unchanged. The manifest beside each file records a
fingerprint of the dataset files the frames were decoded from (paths, sizes, mtimes) and
of the decoding settings, and a CRC-32 of the frames; a cache whose fingerprint differs,
whose file has the wrong size or header, or whose frames fail the checksum is rebuilt.
Frames are written to a temporary file that is renamed into place, and the manifest is
written last, so an interrupted build leaves nothing that passes for complete. A lock file
makes concurrent openers (torchrun ranks) wait for the one that builds.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

FORMAT = 1  # bump when the cache layout or the decoding changes: every cache is then rebuilt
STORES = ("auto", "memory", "disk")
_CHUNK = 16 << 20  # bytes per read while checksumming

# What a decoder yields: the rows (frame indices of the dataset) that show one frame, and
# that (h, w, 3) uint8 frame.
Pieces = Iterable[tuple[np.ndarray, np.ndarray]]


@dataclass
class FrameCacheConfig:
    """Where decoded frames live during training.

    store: ``memory``, ``disk`` (the cache), or ``auto``: disk when the decoded frames of
    the cameras used exceed ``disk_above_mb``. cache_dir: None keeps the cache in the
    dataset, ``<dataset>/.frame_cache/``; a directory (for a read-only dataset, or a faster
    disk) holds it in ``<cache_dir>/<dataset name>-<hash of its path>/``.
    """

    store: str = "auto"
    disk_above_mb: float = 2048.0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ValueError(f"frame store {self.store!r}: expected one of {STORES}")

    def on_disk(self, decoded_mb: float) -> bool:
        return self.store == "disk" or (self.store == "auto" and decoded_mb > self.disk_above_mb)

    def directory(self, dataset: Path) -> Path:
        if self.cache_dir is None:
            return Path(dataset) / ".frame_cache"
        root = Path(dataset).resolve()
        digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]
        return Path(self.cache_dir) / f"{root.name}-{digest}"


def fingerprint(files: Iterable[Path], root: Path, settings: dict) -> str:
    """What a cache depends on: its source files (by path, size and mtime) and ``settings``."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, **settings}, sort_keys=True).encode())
    for f in sorted(set(files)):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def fill(sink, n: int, pieces: Pieces, desc: str) -> None:
    """``sink[rows] = frame`` for every decoded frame; together they must cover the n rows."""
    filled = 0
    with tqdm(total=n, desc=desc, unit="frame", dynamic_ncols=True) as bar:
        for rows, frame in pieces:
            sink[rows] = frame
            filled += len(rows)
            bar.update(len(rows))
    if filled != n:
        raise RuntimeError(f"{desc}: the decoder gave {filled} frames for {n} rows")


def in_memory(shape: tuple[int, ...], pieces: Pieces, desc: str) -> np.ndarray:
    out = np.empty(shape, np.uint8)
    fill(out, shape[0], pieces, desc)
    return out


class FrameCache:
    """(n, h, w, 3) uint8 frames in a cache file, read with ``pread`` (see the module doc).

    Indexed like the array it stands for, by a frame or a contiguous slice; every read is
    a new array. Picklable: a DataLoader worker opens the file for itself.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self._fd: int | None = None  # opened at the first read, in the process that reads
        self.path, self.shape = Path(path), tuple(shape)
        self.offset = len(_header(self.shape))
        self.frame_bytes = int(np.prod(self.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("a FrameCache slice must be contiguous")
            out = np.empty((max(0, stop - start), *self.shape[1:]), np.uint8)
        else:
            start = int(index) + (len(self) if int(index) < 0 else 0)
            if not 0 <= start < len(self):
                raise IndexError(f"frame {index} of {len(self)}")
            out = np.empty(self.shape[1:], np.uint8)
        view, at = memoryview(out).cast("B"), self.offset + start * self.frame_bytes
        while view:
            got = os.preadv(self._file(), [view], at)
            if got == 0:
                raise OSError(f"{self.path}: ends before frame {start} (changed while training?)")
            view, at = view[got:], at + got
        return out

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            # Samples are drawn at random: read-ahead would fetch frames nobody asked for.
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
        return self._fd

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def cached(
    directory: Path, key: str, shape: tuple[int, ...], source: str, decode: Callable[[], Pieces]
) -> FrameCache:
    """The cache of one camera in ``directory``: reused when valid for ``source`` (a
    :func:`fingerprint`), else built from ``decode()``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / f"{key}.lock", "a")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise OSError(
            f"cannot keep the frame cache in {directory} ({exc.strerror}): give it another directory "
            "(--cache-dir, FrameCacheConfig.cache_dir)"
        ) from exc
    path, manifest = directory / f"{key}.npy", directory / f"{key}.json"
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        problem = _invalid(path, manifest, shape, source)
        if problem:
            tqdm.write(f"frame cache {path}: {problem}; decoding")
            _build(path, manifest, shape, source, decode(), key)
    return FrameCache(path, shape)


def _invalid(path: Path, manifest: Path, shape: tuple[int, ...], source: str) -> str | None:
    """Why the cache at ``path`` cannot be used (None: it can); reads it all once."""
    if not (path.is_file() and manifest.is_file()):
        return "not built yet"
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "unreadable manifest"
    if m.get("format") != FORMAT or m.get("source") != source or m.get("shape") != list(shape):
        return "the dataset or the decoding changed"
    header = _header(shape)
    size, expected = path.stat().st_size, len(header) + int(np.prod(shape))
    if size != expected:
        return f"{size} bytes where {expected} belong (truncated?)"
    with open(path, "rb") as f:
        if f.read(len(header)) != header:
            return "corrupt header"
        if _crc32(f, expected - len(header), f"verify {path.stem}") != m.get("crc32"):
            return "frames fail their checksum (corrupt)"
    return None


def _build(path: Path, manifest: Path, shape: tuple[int, ...], source: str, pieces: Pieces, key: str) -> None:
    manifest.unlink(missing_ok=True)  # first: a half-replaced cache must never look complete
    partial = path.with_name(path.name + ".partial")
    header, n_bytes = _header(shape), int(np.prod(shape))
    try:
        with open(partial, "w+b") as f:
            f.write(header)
            f.truncate(len(header) + n_bytes)
            fill(_Rows(f.fileno(), len(header), int(np.prod(shape[1:]))), shape[0], pieces, f"cache {key}")
            f.flush()
            os.fsync(f.fileno())
            f.seek(len(header))
            crc = _crc32(f, n_bytes, f"checksum {key}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    tmp = manifest.with_name(manifest.name + ".partial")
    tmp.write_text(json.dumps({"format": FORMAT, "source": source, "shape": list(shape), "crc32": crc}))
    os.replace(tmp, manifest)


class _Rows:
    """A cache file under construction, written row by row (``rows[r] = frame``) with pwrite,
    so that building one takes no more memory than a frame."""

    def __init__(self, fd: int, offset: int, frame_bytes: int) -> None:
        self.fd, self.offset, self.frame_bytes = fd, offset, frame_bytes

    def __setitem__(self, rows: np.ndarray, frame: np.ndarray) -> None:
        data = np.ascontiguousarray(frame, np.uint8)
        if data.nbytes != self.frame_bytes:
            raise ValueError(f"a frame of {data.shape} in a cache of {self.frame_bytes}-byte frames")
        for r in np.atleast_1d(rows):
            os.pwrite(self.fd, data, self.offset + int(r) * self.frame_bytes)


def _header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape},
    )
    return buf.getvalue()


def _crc32(f, n_bytes: int, desc: str) -> int:
    crc = 0
    with tqdm(total=n_bytes, desc=desc, unit="B", unit_scale=True, dynamic_ncols=True, leave=False) as bar:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            bar.update(len(chunk))
    return crc
