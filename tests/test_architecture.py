"""The code's shape as a specification: layers, no cycles, sizes, and one label per code.

These tests fail when someone adds an upward import or a cycle (import-linter, which
also sees imports written inside functions), lets a module grow past a screenful of
screens, or records a timeline action that has no label: the last happened before
(the printed 客户投诉记录表 showed raw codes such as ``sign_in``).
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from sla_support import act, at

from app import db, labels
from app.complaints import workflow
from app.documents import record_form
from app.models import Complaint, Level
from app.time_limits import deadlines

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"


def test_import_contracts_hold():
    """Layers, "no feature imports the screens", "time limits never import discipline", no cycles."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_longer_than_a_thousand_lines_and_no_screen_module_longer_than_nine_hundred():
    too_long = {
        str(p.relative_to(ROOT)): _lines(p)
        for p in APP.rglob("*.py")
        if p.name != "models.py" and _lines(p) > (900 if "views" in p.parts else 1000)
    }
    assert too_long == {}


def test_every_feature_package_says_what_it_owns():
    for init in APP.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} needs a docstring saying what the package owns"


def _recorded_actions() -> set[str]:
    """Every action code that the application writes onto a complaint's timeline as a literal."""
    codes: set[str] = set()
    for path in APP.rglob("*.py"):
        if "views" in path.parts or "discipline" in path.parts:
            continue  # screens record nothing themselves; discipline writes penalty timelines
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "record_event" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                codes.add(node.args[1].value)
            if name == "ComplaintEvent":
                codes |= {
                    k.value.value for k in node.keywords if k.arg == "action" and isinstance(k.value, ast.Constant)
                }
    return codes


def test_every_step_stage_and_recorded_action_has_one_label():
    assert set(workflow.TRANSITIONS) == labels.STEP_ACTIONS
    assert set(deadlines.STAGES) <= set(labels.STAGE)
    assert {"warning", "overdue", "escalation"} <= set(labels.ACTION)  # the deadline scan's lines
    missing = sorted(_recorded_actions() - set(labels.ACTION))
    assert missing == []
    for code, transition in workflow.TRANSITIONS.items():
        assert transition.label is labels.ACTION[code]


def _pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_the_printed_record_form_shows_chinese_labels_for_every_stage_and_action(app, api, org, make_complaint):
    """Sign-in, first contact, a level change and a re-complaint: no raw code on the printed form."""
    hr = api("renshi")
    assert hr.post("/api/v1/policy_preset/four_level/load").status_code == 200
    received = at(2026, 10, 13, 9, 30)
    c = make_complaint(level="fl_crisis", received_at=received, now=received)
    act(app, org, c, "first_contact", "kefu", at(2026, 10, 13, 9, 35), note="已致电客户致歉")
    act(app, org, c, "judge_valid", "renshi", at(2026, 10, 13, 9, 40))
    act(app, org, c, "dispatch", "renshi", at(2026, 10, 13, 9, 45))
    act(app, org, c, "sign_for", "zhuguan_a", at(2026, 10, 13, 9, 50))
    lower = db.session.query(Level).filter_by(code="fl_major").one()
    act(app, org, c, "change_level", "renshi", at(2026, 10, 13, 9, 55), level=lower.id, note="核实后调整")
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 10, 13, 10, 0))
    act(app, org, c, "propose_plan", "zhuguan_a", at(2026, 10, 13, 10, 5), findings="核实", resolution_plan="修复")
    act(app, org, c, "reply", "zhuguan_a", at(2026, 10, 13, 10, 10), reply_text="已修复")
    act(app, org, c, "recomplain", "kefu", at(2026, 10, 13, 11, 0), content="对答复不满意，再次投诉")
    escalated = db.session.query(Complaint).filter_by(original_id=c.id).one()

    for case in (db.session.get(Complaint, c.id), escalated):
        pdf, _ = record_form.record_form_pdf(db.session, case, None)
        text = _pdf_text(pdf)
        codes = {e.action for e in case.events} | {d.stage for d in case.deadlines}
        assert codes, case.number
        raw = sorted(code for code in codes if code in text)
        assert raw == [], f"{case.number} prints raw codes {raw}"
    original_text = _pdf_text(record_form.record_form_pdf(db.session, db.session.get(Complaint, c.id), None)[0])
    for label in ("首次响应客户", "签收", "调整投诉级别", "开始调查"):
        assert label in original_text, label
    assert "客户再次投诉" in _pdf_text(record_form.record_form_pdf(db.session, escalated, None)[0])


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_printed_labels_are_chinese_whatever_the_screen_language(app, locale):
    from flask_babel import force_locale

    with force_locale(locale):
        assert labels.printed(labels.STAGE, "sign_in") == "签收"
        assert labels.printed(labels.ACTION, "recomplained").startswith("客户再次投诉")
