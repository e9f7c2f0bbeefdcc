"""Attachments (photos, files): checked for type and size, kept once by sha256 content hash."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AttachmentRefused

__all__ = ["Attachment", "sniff", "check_attachments", "from_path", "from_json"]

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]


@dataclass(frozen=True)
class Attachment:
    """A file a reporter sent: its name, bytes and (sniffed) media type."""

    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


def sniff(content: bytes) -> str | None:
    """The media type the bytes really are (by magic number), not what the name claims."""
    for magic, kind in _MAGIC:
        if content.startswith(magic):
            return kind
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_attachments(items: list[Attachment], *, allowed: tuple[str, ...], max_bytes: int,
                      max_count: int) -> list[tuple[Attachment, str]]:
    """Each attachment with its media type, or AttachmentRefused naming the file and the limit."""
    if len(items) > max_count:
        raise AttachmentRefused(items[max_count].name, f"at most {max_count} attachments per report")
    out = []
    for item in items:
        if not item.content:
            raise AttachmentRefused(item.name, "the file is empty")
        if item.size > max_bytes:
            raise AttachmentRefused(item.name, f"{item.size} bytes is over the limit of "
                                    f"{max_bytes} bytes ({max_bytes / 1048576:.0f} MiB)")
        kind = sniff(item.content)
        if kind is None or kind not in allowed:
            guessed = mimetypes.guess_type(item.name)[0] or "unknown"
            raise AttachmentRefused(item.name, f"type {kind or guessed} is not accepted "
                                    f"(accepted: {', '.join(allowed)})")
        out.append((item, kind))
    return out


def from_path(path: str | Path) -> Attachment:
    p = Path(path)
    return Attachment(name=p.name, content=p.read_bytes())


def from_json(item: Any) -> Attachment:
    """From a report file: {"name": …, "base64": …} or {"name": …, "path": …}."""
    if isinstance(item, str):
        return from_path(item)
    if "base64" in item:
        return Attachment(name=item.get("name", "attachment"),
                          content=base64.b64decode(item["base64"]))
    return from_path(item["path"])
