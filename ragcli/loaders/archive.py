"""Guards for zip-based formats (.docx .pptx .epub .odt .odp) before a library opens them.

The libraries unpack every part into memory, so a zip bomb or a huge embedded image would
be unpacked whole. ``check_zip`` reads only the zip's directory and refuses, with a reason:
files that are not zips (truncated, corrupt, or the OLE container of a password-protected or
legacy binary Office file), more than ``MAX_UNPACKED`` bytes in all, a member that unpacks to
over ``MAX_RATIO`` times its packed size (above ``RATIO_FLOOR`` bytes), or an encrypted EPUB/ODF.
zipfile itself stops reading a member at its declared size, so the directory's sizes bound memory.

What it does not do: extract text (the format modules).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ..errors import SourceError, brief

MAX_UNPACKED = 256 * 1024 * 1024  # bytes, all members together
MAX_RATIO = 200  # unpacked / packed size of one member; text XML rarely exceeds 30
RATIO_FLOOR = 8 * 1024 * 1024  # members smaller than this unpacked are never a bomb
MAX_MEMBERS = 20_000

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def check_zip(path: Path, data: bytes, what: str) -> None:
    """Raise ``SourceError`` unless ``data`` is a zip that is safe to unpack in memory."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise SourceError(str(path), f"{what} is protected with a password; save an unprotected copy to ingest it")
        raise SourceError(str(path), f"not a {what} but an old binary Office file (.doc/.ppt); "
                                     "save it in the current format to ingest it")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise SourceError(str(path), f"not a valid {what} ({brief(e)}); the file is corrupt or truncated") from None
    if len(infos) > MAX_MEMBERS:
        raise SourceError(str(path), f"{what} holds {len(infos)} parts (limit {MAX_MEMBERS}); refusing to unpack it")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SourceError(str(path), f"{what} part {info.filename!r} unpacks {info.compress_size} bytes into "
                                         f"{info.file_size} (a zip bomb?); refusing to unpack it")
    if total > MAX_UNPACKED:
        raise SourceError(str(path), f"{what} unpacks to {total / 1e6:.0f} MB (limit {MAX_UNPACKED / 1e6:.0f} MB: "
                                     "huge embedded media?); refusing to unpack it")
    names = {i.filename for i in infos}
    if "META-INF/encryption.xml" in names:  # EPUB DRM (font obfuscation alone lists only fonts)
        enc = zf.read("META-INF/encryption.xml")
        if b".htm" in enc or b".xhtml" in enc:
            raise SourceError(str(path), f"{what} is encrypted (DRM); only unencrypted e-books can be read")
    if "META-INF/manifest.xml" in names and b"encryption-data" in zf.read("META-INF/manifest.xml"):
        raise SourceError(str(path), f"{what} is protected with a password; save an unprotected copy to ingest it")


def unreadable(path: Path, what: str, e: Exception) -> SourceError:
    """The one-line error for a library that failed on a file that passed ``check_zip``."""
    return SourceError(str(path), f"cannot read {what} ({brief(e)}); "
                                  "the file is corrupt or truncated")
