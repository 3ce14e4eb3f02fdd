"""A tiny writer for OLE compound files (the container of .doc), for building test samples.

olefile can only read, and the tests need DOC-shaped files with chosen streams and storages
(macros, embedded objects, an encrypted flag). Every stream is padded to the 4096-byte mini
stream cut-off so that only regular 512-byte sectors are needed.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

SECTOR = 512
ENDOFCHAIN = 0xFFFFFFFE
FREESECT = 0xFFFFFFFF
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
MINI_CUTOFF = 4096


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    start: int = ENDOFCHAIN
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM


def build_cfb(streams: dict[str, bytes]) -> bytes:
    """A compound file holding `streams`, keyed by '/'-separated paths (storages implied).

    A path ending in '/' makes an empty storage.
    """
    entries = [_Entry("Root Entry", 5)]
    index: dict[str, int] = {"": 0}
    for path, data in streams.items():
        parts = [p for p in path.split("/") if p]
        parent = ""
        for depth, part in enumerate(parts):
            key = "/".join(parts[: depth + 1])
            is_leaf = depth == len(parts) - 1 and not path.endswith("/")
            if key not in index:
                entries.append(_Entry(part, 2 if is_leaf else 1))
                index[key] = len(entries) - 1
                entries[index[parent]].children.append(index[key])
            parent = key
        if not path.endswith("/"):
            entries[index[parent]].data = data.ljust(MINI_CUTOFF, b"\x00")

    # Children as a right-leaning chain: readers walk the tree, they do not rebalance it.
    for entry in entries:
        if entry.children:
            entry.child = entry.children[0]
            for a, b in itertools.pairwise(entry.children):
                entries[a].right = b

    dir_sectors = -(-len(entries) // 4)
    data_sectors = sum(-(-len(e.data) // SECTOR) for e in entries if e.kind == 2)
    fat_sectors = 1
    while fat_sectors * 128 < fat_sectors + dir_sectors + data_sectors:
        fat_sectors += 1
    fat = [FATSECT] * fat_sectors
    first_dir = len(fat)
    fat += [len(fat) + i + 1 for i in range(dir_sectors - 1)] + [ENDOFCHAIN]
    body = b""
    for entry in entries:
        if entry.kind != 2:
            continue
        count = -(-len(entry.data) // SECTOR)
        entry.start = len(fat)
        fat += [len(fat) + i + 1 for i in range(count - 1)] + [ENDOFCHAIN]
        body += entry.data.ljust(count * SECTOR, b"\x00")
    fat += [FREESECT] * (fat_sectors * 128 - len(fat))

    directory = b""
    for entry in entries:
        name = entry.name.encode("utf-16-le") + b"\x00\x00"
        directory += struct.pack(
            "<64sHBBIII16sIQQIQ",
            name,
            len(name),
            entry.kind,
            1,  # black
            entry.left,
            entry.right,
            entry.child,
            b"\x00" * 16,
            0,
            0,
            0,
            entry.start if entry.kind == 2 else ENDOFCHAIN,
            len(entry.data),
        )
    directory = directory.ljust(dir_sectors * SECTOR, b"\x00")

    difat = list(range(fat_sectors)) + [FREESECT] * (109 - fat_sectors)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\x00" * 16,
        0x003E,
        0x0003,
        0xFFFE,
        9,
        6,
        b"\x00" * 6,
        0,
        fat_sectors,
        first_dir,
        0,
        MINI_CUTOFF,
        ENDOFCHAIN,
        0,
        ENDOFCHAIN,
        0,
        *difat,
    )
    return header + struct.pack(f"<{len(fat)}I", *fat) + directory + body
