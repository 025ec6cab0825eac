"""Read every ``.npy`` header of an ``.npz`` ourselves, with bounds, before ``np.load`` does.

``np.load`` trusts a member's header: a crafted one declaring 10¹² elements
asks for terabytes (MemoryError), and one nested 100,000 brackets deep
exhausts the parser (RecursionError). Here each header is read with a
length bound, a nesting bound, and the rule that the data it declares must
be exactly the bytes the member holds; members must be stored uncompressed,
as ``np.savez`` writes them, so no member can inflate beyond the file.
"""
from __future__ import annotations

import ast
import math
import struct
import zipfile
from pathlib import Path

import numpy as np

MAGIC = b"\x93NUMPY"
#: numpy's own default bound on a header (``np.lib.format``'s max_header_size)
MAX_HEADER_BYTES = 10_000
#: a header is a flat dict holding a shape tuple: two levels; structured dtypes add a few
MAX_NESTING = 8


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _read_header(f, name: str):
    """(dtype, shape, header bytes) of one member, or ValueError naming it."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != MAGIC:
        raise ValueError(f"member {name} is not an .npy array")
    major = magic[6]
    if major == 1:
        size_bytes, fmt = 2, "<H"
    elif major in (2, 3):
        size_bytes, fmt = 4, "<I"
    else:
        raise ValueError(f"member {name}: unknown .npy version {major}")
    raw = f.read(size_bytes)
    if len(raw) < size_bytes:
        raise ValueError(f"member {name}: truncated header")
    length = struct.unpack(fmt, raw)[0]
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"member {name}: a header of {length} bytes (at most {MAX_HEADER_BYTES})")
    text = f.read(length).decode("utf8" if major == 3 else "latin1", errors="replace")
    if _nesting(text) > MAX_NESTING:
        raise ValueError(f"member {name}: a header nested more than {MAX_NESTING} deep")
    try:
        header = ast.literal_eval(text)
        dtype = np.dtype(header["descr"])
        shape = tuple(header["shape"])
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError) as error:
        raise ValueError(f"member {name}: unreadable header ({type(error).__name__})") from None
    if not all(isinstance(n, int) and n >= 0 for n in shape) or dtype.hasobject:
        raise ValueError(f"member {name}: shape {shape} of dtype {dtype} is not a plain array")
    return dtype, shape, 8 + size_bytes + length


def check_members(path) -> None:
    """Raise ValueError unless every member of the archive at ``path`` is a plain, honest array."""
    on_disk = Path(path).stat().st_size
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"member {info.filename} is compressed (np.savez stores members)")
            if info.file_size > on_disk:
                raise ValueError(f"member {info.filename} declares {info.file_size} bytes, more than the file")
            with archive.open(info) as f:
                dtype, shape, header_bytes = _read_header(f, info.filename)
            declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if declared != info.file_size - header_bytes:
                raise ValueError(f"member {info.filename} declares {math.prod(shape)} elements of "
                                 f"{dtype} but holds {info.file_size - header_bytes} bytes of data")
