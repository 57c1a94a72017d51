"""Files that hold personal data stay private: backups are readable by their owner only, and
no download (workbooks, PDFs, attachments, evidence) is kept by a browser or proxy cache."""

from __future__ import annotations

import io
import os
import stat
from datetime import datetime

from http_clients import Client

from app import db
from app.models import Attachment
from app.timeutil import LOCAL_TZ

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_backup_file_is_readable_by_its_owner_only(app, tmp_path):
    target = tmp_path / "portal.backup"
    old = os.umask(0o022)  # the usual umask: new files 0644
    try:
        result = app.test_cli_runner().invoke(args=["backup", "-o", str(target)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_backup_over_an_existing_readable_file_makes_it_private(app, tmp_path):
    target = tmp_path / "portal.backup"
    target.write_bytes(b"old")
    target.chmod(0o644)
    result = app.test_cli_runner().invoke(args=["backup", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _no_store(response) -> bool:
    return "no-store" in response.headers.get("Cache-Control", "") and "public" not in response.headers.get(
        "Cache-Control", ""
    )


def test_personal_data_downloads_are_sent_no_store(app, api, org, make_complaint, discipline_kit):
    c = make_complaint(department="GC")
    discipline_kit.issued(staff="刘强", complaint=c)
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    hr = api("renshi")
    r = hr.get(f"/api/v1/penalty/ledger.xlsx?month={month}")
    assert r.status_code == 200 and _no_store(r), r.headers.get("Cache-Control")
    browser = Client(app, "renshi")
    up = browser.post(
        f"/complaintview/attach/{c.id}",
        data={"file": (io.BytesIO(PNG), "photo.png"), "description": "现场照片"},
        content_type="multipart/form-data",
    )
    assert up.status_code == 302
    attachment = db.session.query(Attachment).filter_by(complaint_id=c.id).one()
    downloads = [
        browser.get(f"/complaintview/attachment/{attachment.id}"),
        hr.get(f"/api/v1/complaint/{c.id}/attachments/{attachment.id}"),
        hr.get(f"/api/v1/complaint/{c.id}/record_form.pdf"),
    ]
    for r in downloads:
        assert r.status_code == 200 and r.headers.get("Content-Disposition"), r.status_code
        assert _no_store(r), (r.headers.get("Content-Disposition"), r.headers.get("Cache-Control"))
