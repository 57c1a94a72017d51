"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

import hashlib
import os
from typing import NoReturn, Optional

from app.i18n import _l
from app.lifecycle import ValidationFailed, record_event
from app.models import (
    Attachment,
    Complaint,
)


def _size(n: int) -> str:
    """A file size people read: KB below a megabyte."""
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{max(n / 1024, 0.1):.1f} KB"


def add_attachment(
    complaint: Complaint,
    filename: str,
    data: bytes,
    content_type: Optional[str],
    actor_id: Optional[int],
    allowed: dict[str, str],
    max_bytes: int,
    description: Optional[str] = None,
) -> Attachment:
    """Attach an evidence file after checking its type and size; refuse with the reason."""
    if complaint.is_archived:
        _refuse(str(_l("The case is archived and can no longer be changed.")))
    name, ext = _checked_name(filename, allowed)
    _check_size(data, max_bytes)
    attachment = Attachment(
        filename=name[:255],
        content_type=allowed[ext],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        description=(description or "").strip()[:255] or None,
        uploaded_by_id=actor_id,
    )
    complaint.attachments.append(attachment)
    record_event(complaint, "attach", actor_id, note=name, data={"size": len(data)})
    return attachment


def _refuse(message: str) -> NoReturn:
    """Refuse the upload with one message on the file field."""
    raise ValidationFailed({"file": [message]})


def _checked_name(filename: str, allowed: dict[str, str]) -> tuple[str, str]:
    """The file's base name and lower-case extension; refuse a missing name or a type not allowed."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    ext = os.path.splitext(name)[1].lower()
    if not name:
        _refuse(str(_l("Please choose a file to upload.")))
    if ext not in allowed:
        _refuse(
            str(
                _l(
                    "Files of type “%(ext)s” are not accepted. Allowed: %(allowed)s.",
                    ext=ext or name,
                    allowed=", ".join(sorted(allowed)),
                )
            )
        )
    return name, ext


def _check_size(data: bytes, max_bytes: int) -> None:
    """Refuse an empty file or one larger than ``max_bytes``."""
    if len(data) == 0:
        _refuse(str(_l("The file is empty.")))
    if len(data) > max_bytes:
        _refuse(
            str(
                _l(
                    "The file is %(size)s; at most %(limit)s is accepted.",
                    size=_size(len(data)),
                    limit=_size(max_bytes),
                )
            )
        )
