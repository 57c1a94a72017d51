"""On PostgreSQL the audit tables are append-only: UPDATE and DELETE are refused by triggers.

The normal flows that write them (case transitions, penalty steps, the access log) and
the test fixtures' TRUNCATE cleanup keep working.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import db
from app.access import privacy
from app.models import ComplaintEvent, PenaltyEvent

TABLES = ("complaint_event", "penalty_event", "access_log")


@pytest.fixture
def audit_rows(app, make_complaint, discipline_kit):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only triggers exist on PostgreSQL only")
    complaint = make_complaint()
    penalty = discipline_kit.open(complaint=complaint)
    discipline_kit.step(penalty, "propose", "zhuguan_a")
    privacy.log_access(db.session, "reveal", username="renshi", target=("complaint", complaint.id))
    db.session.commit()
    assert db.session.query(ComplaintEvent).count() >= 1
    assert db.session.query(PenaltyEvent).count() >= 1
    return complaint, penalty


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET at = at WHERE id = (SELECT min(id) FROM {t})",
        "DELETE FROM {t} WHERE id = (SELECT min(id) FROM {t})",
    ],
)
def test_update_and_delete_of_audit_rows_are_refused(app, audit_rows, table, statement):
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement.format(t=table)))
    db.session.rollback()
    assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() >= 1


def test_normal_flows_still_append(app, audit_rows, discipline_kit, org):
    from app.complaints import steps as services

    complaint, penalty = audit_rows
    services.take_transition(db.session, complaint, "judge_valid", org.principal("renshi"), {})
    db.session.commit()
    discipline_kit.step(penalty, "review", "renshi")
    privacy.log_access(db.session, "login_failed", username="x")
    db.session.commit()
    actions = [e.action for e in db.session.query(ComplaintEvent).filter_by(complaint_id=complaint.id)]
    assert "judge_valid" in actions
