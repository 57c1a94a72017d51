"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional

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
        raise ValidationFailed({"file": [str(_l("The case is archived and can no longer be changed."))]})
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    ext = os.path.splitext(name)[1].lower()
    if not name:
        raise ValidationFailed({"file": [str(_l("Please choose a file to upload."))]})
    if ext not in allowed:
        raise ValidationFailed(
            {
                "file": [
                    str(
                        _l(
                            "Files of type “%(ext)s” are not accepted. Allowed: %(allowed)s.",
                            ext=ext or name,
                            allowed=", ".join(sorted(allowed)),
                        )
                    )
                ]
            }
        )
    if len(data) == 0:
        raise ValidationFailed({"file": [str(_l("The file is empty."))]})
    if len(data) > max_bytes:
        raise ValidationFailed(
            {
                "file": [
                    str(
                        _l(
                            "The file is %(size)s; at most %(limit)s is accepted.",
                            size=_size(len(data)),
                            limit=_size(max_bytes),
                        )
                    )
                ]
            }
        )
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
