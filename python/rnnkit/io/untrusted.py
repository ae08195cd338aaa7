"""Reading files from elsewhere as untrusted input: sizes and nesting checked before anything is
read, every failure a ValueError (or MemoryError) naming the file and the problem.

* JSON: the nesting depth is counted on the raw text first (Python's parser would raise
  RecursionError, and every reader of configs recurses), then parsed.
* Zip archives: a member's declared size is checked against a limit before it is read (a zip
  bomb declares its inflated size honestly, or zipfile stops at the declared size and fails the
  CRC), and the member is read through zipfile, which never inflates past that size.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

# Real model configs nest about 10 levels per nested model; Keras's deepest are far below this.
MAX_JSON_DEPTH = 200
# A configuration file or header: far above any real model's (a few hundred KiB at most).
MAX_CONFIG_BYTES = 64 << 20


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: bytes | str) -> int:
    """The deepest nesting of arrays and objects in JSON `text` (brackets inside strings
    skipped), counted without recursion: vectorised over the bytes, strings removed first."""
    data = text.encode("utf8", "surrogatepass") if isinstance(text, str) else bytes(text)
    codes = np.frombuffer(_STRING.sub(b"", data), dtype=np.uint8)
    if codes.size == 0:
        return 0
    steps = np.isin(codes, (0x5B, 0x7B)).astype(np.int64) - np.isin(codes, (0x5D, 0x7D))
    return int(max(np.cumsum(steps).max(), 0))


def load_json(text: bytes | str, source: str, what: str = "configuration") -> Any:
    """Parse JSON from a file; ValueError naming `source` if it is too deep or not JSON."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(
            f"{source}: its {what} is {len(text):,} bytes, over the {MAX_CONFIG_BYTES:,} a model "
            "configuration may take; refusing to read it."
        )
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"{source}: its {what} nests {depth} levels deep, over the {MAX_JSON_DEPTH} any model "
            "needs; refusing to read it."
        )
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"{source}: its {what} is not valid JSON ({error}).") from None


def read_member(archive: zipfile.ZipFile, name: str, limit: int, source: str) -> bytes:
    """The bytes of member `name`, whose declared size must be at most `limit`."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ValueError(f"{source} has no member {name!r}.") from None
    if info.file_size > limit:
        raise ValueError(
            f"{source}: member {name!r} declares {info.file_size:,} bytes, over the "
            f"{limit:,} this model can need; refusing to inflate it."
        )
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, zlib.error) as error:
        raise ValueError(f"{source}: member {name!r} cannot be read ({error}).") from None


def open_zip(path: Any, source: str) -> zipfile.ZipFile:
    """The zip archive at `path`; ValueError naming `source` if it is damaged."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as error:
        raise ValueError(f"{source} is a damaged zip archive ({error}).") from None


def read_npz(data: bytes, expected: dict[str, tuple[int, ...] | None], source: str,
             what: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz held in `data`, each checked before it is read: present, stored
    within its declared size, a numeric dtype, and of the expected shape (None: any shape
    whose bytes the member holds). No pickles (allow_pickle=False)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as error:
        raise ValueError(f"{source}: {what} is not a valid .npz ({error}).") from None
    arrays = {}
    with archive:
        for key, shape in expected.items():
            member = f"{key}.npy"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ValueError(f"{source}: {what} has no array {key!r}.") from None
            limit = 4096 + (math.prod(shape) * 8 if shape is not None else info.file_size)
            if info.file_size > limit:
                raise ValueError(
                    f"{source}: array {key!r} of {what} declares {info.file_size:,} bytes, over "
                    f"the {limit:,} its shape {shape} needs."
                )
            with archive.open(info) as handle:
                try:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        header = np.lib.format.read_array_header_1_0(handle)
                    elif version == (2, 0):
                        header = np.lib.format.read_array_header_2_0(handle)
                    else:
                        raise ValueError(f"unsupported .npy format version {version}")
                except (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile,
                        zlib.error) as error:
                    raise ValueError(
                        f"{source}: array {key!r} of {what} has a broken header ({error})."
                    ) from None
                declared, fortran, dtype = header
                if dtype.kind not in "biuf" or dtype.hasobject:
                    raise ValueError(
                        f"{source}: array {key!r} of {what} has dtype {dtype}; expected numbers."
                    )
                if shape is not None and tuple(declared) != tuple(shape):
                    raise ValueError(
                        f"{source}: array {key!r} of {what} has shape {tuple(declared)}, "
                        f"expected {tuple(shape)}."
                    )
                if math.prod(declared) * dtype.itemsize > info.file_size:
                    raise ValueError(
                        f"{source}: array {key!r} of {what} declares shape {tuple(declared)}, "
                        f"more than the {info.file_size:,} bytes it holds."
                    )
            try:
                with archive.open(info) as handle:
                    arrays[key] = np.lib.format.read_array(handle, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                raise ValueError(f"{source}: array {key!r} of {what} cannot be read "
                                 f"({error}).") from None
    return arrays


@contextlib.contextmanager
def reading(source: str) -> Iterator[None]:
    """Failures while loading `source` as ValueError / TypeError / MemoryError naming it:
    errors of the parsers and containers (KeyError, IndexError, RecursionError, h5py's OSError
    and RuntimeError, ...) become ValueError; a missing or unreadable file stays the OSError
    that names it."""
    try:
        yield
    except MemoryError:
        raise MemoryError(f"{source}: not enough memory to load it.") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (ValueError, TypeError) as error:
        if source in str(error):
            raise
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"{source}: {error}") from None
    except (KeyError, IndexError, AttributeError, RecursionError, OSError, EOFError,
            OverflowError, NotImplementedError, RuntimeError, zipfile.BadZipFile, struct.error,
            zlib.error) as error:
        raise ValueError(
            f"{source} is not a readable model file ({type(error).__name__}: {error})."
        ) from None
