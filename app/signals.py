"""Named signals: a lower package announces what happened; the packages above subscribe.

The clock engine (app/time_limits) and the complaint steps (app/complaints) do not call
messaging or discipline code: they send one of these blinker signals (the library Flask
uses for its own signals), and the interested packages connect receivers:

============================  ==============================  ===================================
signal                        sent by                         received by
============================  ==============================  ===================================
``case_numbering``            complaints.intake               messages.alerts (reads who is told)
``case_registered``           complaints.intake               messages.alerts (who is told);
                                                              complaints.policy_rules (batches)
``step_taken``                time_limits.sla.after_transition messages.alerts
``case_recomplained``         complaints.intake               messages.alerts
``dispute_opened`` / ``_ruled`` complaints.steps              messages.alerts
``pause_cap_reached``         time_limits.sla                 messages.alerts
``clock_event``               time_limits.sla.scan            messages.alerts; discipline.overtime
                                                              (a missed clock drafts a fine)
``scan_batch_done``           time_limits.sla.scan            messages.alerts (sends the batch)
============================  ==============================  ===================================

The sender is the complaint (the session for ``scan_batch_done``); keyword arguments
carry the rest (always ``session`` and ``now``). Receivers run synchronously, in the
caller's transaction: they add rows to the same session and never commit; the order
among receivers does not matter. :func:`app.connect_receivers` imports the receiving
modules once, so every process (web, scheduler, CLI, tests) has them connected.
"""

from __future__ import annotations

from blinker import Namespace

_portal = Namespace()

case_numbering = _portal.signal(
    "case-numbering",
    doc="A new complaint, its clocks started in memory, is about to take its number: the day's counter then stays "
    "locked until the commit, so receivers read now what does not need the number or the case's id.",
)
case_registered = _portal.signal("case-registered", doc="A complaint was registered and its clocks started.")
step_taken = _portal.signal(
    "step-taken", doc="A lifecycle step was taken (kwargs: transition, before, after, values, actor_id)."
)
case_recomplained = _portal.signal(
    "case-recomplained", doc="A customer complained again: the escalated complaint is the sender (kwargs: original)."
)
dispute_opened = _portal.signal("dispute-opened", doc="A department objected to a dispatch (kwargs: dispute).")
dispute_ruled = _portal.signal("dispute-ruled", doc="The supervising leader ruled a dispute (kwargs: dispute).")
pause_cap_reached = _portal.signal("pause-cap-reached", doc="A paused clock reached the cap (kwargs: pause_id, note).")
scan_batch_due = _portal.signal(
    "scan-batch-due",
    doc="The deadline scan is about to announce a batch's clock events (kwargs: complaint_ids, batch, now).",
)
clock_event = _portal.signal(
    "clock-event",
    doc="A clock was warned, missed or escalated (kwargs: deadline, rule, kind, note, dedup_key, batch).",
)
scan_batch_done = _portal.signal(
    "scan-batch-done", doc="The deadline scan finished a batch; receivers flush what they queued (kwargs: batch)."
)
