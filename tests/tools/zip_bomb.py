"""Zip-based files that declare far more unpacked bytes than they hold (zip bombs).

    python tests/tools/zip_bomb.py IN.docx OUT.docx   # IN plus a 300 MB member of zeros
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path


def with_zeros_member(data: bytes, name: str, size: int) -> bytes:
    """The zip ``data`` plus a member ``name`` of ``size`` zero bytes, written in 1 MiB pieces,
    so neither this process nor the file holds them: 300 MB packs into about 300 kB."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z, z.open(name, "w", force_zip64=True) as fh:
        piece = bytes(1 << 20)
        for _ in range(size >> 20):
            fh.write(piece)
    return out.getvalue()


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.write_bytes(with_zeros_member(src.read_bytes(), "word/media/image1.bmp", 300 << 20))
