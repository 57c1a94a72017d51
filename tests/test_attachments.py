"""Evidence files of a case: upload (form and API), refusal with the reason, download.

A file is stored as sent and comes back byte for byte (same SHA-256). A refused
file (too large, a type not on the list, empty) is answered with the reason and
nothing is stored. Files are scoped like their case: a department head never
reaches the files of another department's case (404).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from typing import Any

import pytest
from http_clients import Client, is_chinese
from sqlalchemy import func, select

from app import db
from app.models import Attachment, ComplaintEvent

MB = 1024 * 1024


def stored() -> tuple[int, int]:
    """(attachments, history events) in the database."""
    result = (
        db.session.scalar(select(func.count()).select_from(Attachment)),
        db.session.scalar(select(func.count()).select_from(ComplaintEvent)),
    )
    db.session.rollback()
    return result


def upload(
    client: Client,
    complaint_id: int,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    **form: str,
) -> Any:
    files = {"file": (io.BytesIO(data), name, content_type), **form}
    if client.headers:  # API client
        return client.post(f"/api/v1/complaint/{complaint_id}/attachments", data=files)
    return client.post(f"/complaintview/attach/{complaint_id}", data=files)


def flashed(client: Client, response: Any) -> str:
    """The case page the form redirected to (where its messages are shown)."""
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def case(make_complaint: Any) -> Any:
    """A 工程部 case registered by 客服."""
    return make_complaint(department="GC", by="kefu")


# --- upload and download --------------------------------------------------------------------------


def test_file_uploaded_by_api_downloads_with_the_same_bytes(app, case):
    data = os.urandom(50_000)
    api = Client(app, "kefu", api=True)

    r = upload(api, case.id, "现场照片.jpg", data, "image/jpeg", description="业主提供")

    assert r.status_code == 201, r.json
    meta = r.json["result"]
    assert meta["filename"] == "现场照片.jpg"
    assert meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["description"] == "业主提供"

    listed = api.get(f"/api/v1/complaint/{case.id}/attachments").json["result"]
    assert [a["id"] for a in listed] == [meta["id"]]

    for client, url in (
        (api, f"/api/v1/complaint/{case.id}/attachments/{meta['id']}"),
        (Client(app, "kefu"), f"/complaintview/attachment/{meta['id']}"),
        (Client(app, "zhuguan_a"), f"/complaintview/attachment/{meta['id']}"),
    ):
        got = client.get(url)
        assert got.status_code == 200, url
        assert got.data == data
        assert hashlib.sha256(got.data).hexdigest() == meta["sha256"]
        assert got.headers["Content-Type"].startswith("image/jpeg")
        assert got.headers["Content-Disposition"].startswith("attachment")


def test_file_uploaded_by_form_is_listed_on_the_case_and_in_its_history(app, org, case):
    data = b"%PDF-1.4 minimal evidence"
    web = Client(app, "zhuguan_a")
    before = stored()

    r = upload(web, case.id, "维修记录.pdf", data, "application/pdf")

    assert r.headers["Location"].endswith(f"/complaintview/show/{case.id}")
    page = flashed(web, r)
    assert "文件已上传" in page
    assert "维修记录.pdf" in page
    assert stored() == (before[0] + 1, before[1] + 1)
    row = db.session.scalars(select(Attachment).where(Attachment.complaint_id == case.id)).one()
    assert row.data == data and row.uploaded_by_id == org.user("zhuguan_a").id
    event = db.session.scalars(select(ComplaintEvent).order_by(ComplaintEvent.id.desc()).limit(1)).one()
    assert (event.action, event.actor_id, event.note) == ("attach", org.user("zhuguan_a").id, "维修记录.pdf")

    assert Client(app, "zhuguan_a").get(f"/complaintview/attachment/{row.id}").data == data


def test_stored_type_comes_from_the_extension_not_from_the_client(app, case):
    api = Client(app, "kefu", api=True)
    r = upload(api, case.id, "photo.png", b"<script>alert(1)</script>", "text/html")
    assert r.status_code == 201, r.json

    got = api.get(f"/api/v1/complaint/{case.id}/attachments/{r.json['id']}")

    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment")


def test_directories_in_the_file_name_are_dropped(app, case):
    r = upload(Client(app, "kefu", api=True), case.id, "../../etc/证据.txt", b"text")

    assert r.status_code == 201, r.json
    assert r.json["result"]["filename"] == "证据.txt"


# --- refusals: the reason, and nothing stored --------------------------------------------------


def _size_numbers(message: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", message)


@pytest.mark.parametrize("via", ["api", "form"])
def test_file_over_the_size_limit_is_refused_saying_size_and_limit(app, case, monkeypatch, via):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1 * MB)
    client = Client(app, "kefu", api=via == "api")
    before = stored()

    r = upload(client, case.id, "录音.mp3", b"\0" * (3 * MB // 2), "audio/mpeg")

    if via == "api":
        assert r.status_code == 422
        message = r.json["message"]["file"][0]
    else:
        message = flashed(client, r)
    assert "文件大小为 1.5 MB，最大允许 1.0 MB。" in message
    assert stored() == before


def test_file_exactly_at_the_size_limit_is_accepted_and_one_byte_more_is_not(app, case, monkeypatch):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 2048)
    api = Client(app, "kefu", api=True)

    assert upload(api, case.id, "a.txt", b"x" * 2048).status_code == 201
    before = stored()
    assert upload(api, case.id, "b.txt", b"x" * 2049).status_code == 422
    assert stored() == before


def test_size_refusal_tells_size_and_limit_apart_for_small_limits(app, case, monkeypatch):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 100 * 1024)

    r = upload(Client(app, "kefu", api=True), case.id, "photo.jpg", b"\0" * (150 * 1024))

    assert r.status_code == 422
    size, limit = _size_numbers(r.json["message"]["file"][0])[:2]
    assert size != limit


@pytest.mark.parametrize("via", ["api", "form"])
def test_file_of_a_type_not_on_the_list_is_refused_naming_the_allowed_types(app, case, via):
    client = Client(app, "kefu", api=via == "api")
    before = stored()

    r = upload(client, case.id, "setup.exe", b"MZ\x90\x00", "application/octet-stream")

    if via == "api":
        assert r.status_code == 422
        message = r.json["message"]["file"][0]
    else:
        message = flashed(client, r)
    assert "不接受“.exe”类型的文件" in message
    assert ".pdf" in message and ".jpg" in message
    assert stored() == before


@pytest.mark.parametrize("via", ["api", "form"])
def test_empty_file_is_refused(app, case, via):
    client = Client(app, "kefu", api=via == "api")
    before = stored()

    r = upload(client, case.id, "空白.txt", b"", "text/plain")

    if via == "api":
        assert r.status_code == 422
        assert r.json["message"]["file"] == ["文件为空。"]
    else:
        assert "文件为空。" in flashed(client, r)
    assert stored() == before


def test_api_upload_without_a_file_asks_for_one(app, case):
    before = stored()

    r = Client(app, "kefu", api=True).post(
        f"/api/v1/complaint/{case.id}/attachments", data={"description": "忘了选文件"}
    )

    assert r.status_code == 400
    assert is_chinese(r.json["message"]["file"][0])
    assert stored() == before


# --- scope ------------------------------------------------------------------------------------


def test_other_department_head_gets_404_for_the_files_of_a_case_it_cannot_see(app, case):
    data = b"GC evidence only"
    att = upload(Client(app, "kefu", api=True), case.id, "gc.txt", data).json["id"]
    api, web = Client(app, "zhuguan_b", api=True), Client(app, "zhuguan_b")
    before = stored()

    for client, method, url in (
        (api, "GET", f"/api/v1/complaint/{case.id}/attachments"),
        (api, "GET", f"/api/v1/complaint/{case.id}/attachments/{att}"),
        (web, "GET", f"/complaintview/attachment/{att}"),
    ):
        r = client.open(method, url)
        assert r.status_code == 404, url
        assert data not in r.data and b"gc.txt" not in r.data
    assert upload(api, case.id, "x.txt", b"intruder").status_code == 404
    assert upload(web, case.id, "x.txt", b"intruder").status_code == 404
    assert stored() == before

    # The department's own head reaches the same file.
    assert Client(app, "zhuguan_a").get(f"/complaintview/attachment/{att}").data == data


def test_a_file_is_served_only_under_its_own_case(app, make_complaint):
    gc = make_complaint(department="GC")
    ba = make_complaint(department="BA")
    att = upload(Client(app, "kefu", api=True), gc.id, "gc.txt", b"GC").json["id"]

    r = Client(app, "renshi", api=True).get(f"/api/v1/complaint/{ba.id}/attachments/{att}")

    assert r.status_code == 404


def test_customer_service_reaches_no_file_of_a_case_registered_by_someone_else(app, make_complaint):
    by_hr = make_complaint(department="GC", by="renshi")
    att = upload(Client(app, "renshi", api=True), by_hr.id, "hr.txt", b"HR").json["id"]

    assert Client(app, "kefu").get(f"/complaintview/attachment/{att}").status_code == 404
    assert Client(app, "kefu", api=True).get(f"/api/v1/complaint/{by_hr.id}/attachments/{att}").status_code == 404


def test_general_manager_reads_files_but_cannot_upload(app, case):
    att = upload(Client(app, "kefu", api=True), case.id, "gc.txt", b"GC").json["id"]
    before = stored()

    assert upload(Client(app, "zongjingli", api=True), case.id, "gm.txt", b"GM").status_code == 403
    assert upload(Client(app, "zongjingli"), case.id, "gm.txt", b"GM").status_code == 403
    assert stored() == before
    assert Client(app, "zongjingli").get(f"/complaintview/attachment/{att}").data == b"GC"
