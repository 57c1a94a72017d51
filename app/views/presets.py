"""Policy presets: load a complaint policy's rules and limits in one step."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.security.decorators import permission_name, protect

from app import settings
from app.extensions import db
from app.i18n import _
from app.time_limits import presets as policy_presets
from app.time_limits.deadlines import STAGES, UNIT_LABELS
from app.views.base import ApiConventions
from app.views.security import current_user

PRESET_PERMS = {"index": "read", "load": "load", "presets": "read", "load_preset": "load"}


class PolicyPresetView(BaseView):
    """Load one of the seed policies' level schemes and time limits (administrators, HR)."""

    route_base = "/policypresets"
    default_view = "index"
    class_permission_name = "PolicyPreset"
    method_permission_name = PRESET_PERMS

    @expose("/", methods=["GET"])
    @has_access
    def index(self) -> Any:
        return self.render_template(
            "policy/presets.html",
            presets=policy_presets.PRESETS,
            current=settings.get(db.session, "policy.preset"),
            can_load=self.appbuilder.sm.has_access("can_load", "PolicyPreset"),
            stage_label=lambda v: str(STAGES[v].label) if v in STAGES else v,
            unit_label=lambda v: str(UNIT_LABELS.get(v, v)),
            title=_("Policy presets"),
        )

    @expose("/load/<string:code>", methods=["POST"])
    @has_access
    def load(self, code: str) -> Any:
        user = current_user()
        try:
            result = policy_presets.load(db.session, code, actor_id=user.id if user else None)
            db.session.commit()
            flash(
                _(
                    "Preset loaded: %(levels)s levels active, %(rules)s rules, %(cases)s open cases recomputed.",
                    levels=len(policy_presets.PRESETS[code].levels),
                    rules=result["rules"],
                    cases=result["recomputed"],
                )
                + " "
                + _("Source: %(citation)s", citation=policy_presets.PRESETS[code].citation),
                "success",
            )
        except policy_presets.PresetError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        return redirect(url_for("PolicyPresetView.index"))


class PolicyPresetApi(ApiConventions, BaseApi):
    """``GET /api/v1/policy_preset/``: the presets; ``POST /api/v1/policy_preset/<code>/load`` loads one."""

    resource_name = "policy_preset"
    class_permission_name = "PolicyPreset"
    method_permission_name = PRESET_PERMS
    allow_browser_login = True

    @api_expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("presets")
    def presets(self) -> Any:
        """The policy presets with their levels and rules.
        ---
        get:
          responses:
            200:
              description: The presets
        """
        return self.response(
            200,
            current=settings.get(db.session, "policy.preset") or None,
            result=[
                {
                    "code": p.code,
                    "name": p.name,
                    "source": p.source,
                    "citation": p.citation,
                    "clause": p.clause,
                    "description": str(p.description),
                    "levels": [
                        {
                            "code": lv.code,
                            "name": lv.name,
                            "rank": lv.rank,
                            "major": lv.major,
                            "extension_approver": lv.extension_approver,
                            "max_contacts": lv.max_contacts,
                        }
                        for lv in p.levels
                    ],
                    "rules": [
                        {
                            "level": r.level,
                            "stage": r.stage,
                            "amount": r.amount,
                            "unit": r.unit,
                            "average_amount": r.average_amount,
                            "escalate_role": r.escalate_role,
                            "overtime_fine": r.overtime_fine,
                            "description": r.description,
                        }
                        for r in p.rules
                    ],
                }
                for p in policy_presets.PRESETS.values()
            ],
        )

    @api_expose("/<string:code>/load", methods=["POST"])
    @protect()
    @safe
    @permission_name("load_preset")
    def load_preset(self, code: str) -> Any:
        """Load a preset: its levels become active, its rules replace those of its levels.
        ---
        post:
          responses:
            200:
              description: Loaded
            404:
              description: No such preset
        """
        user = current_user()
        try:
            result = policy_presets.load(db.session, code, actor_id=user.id if user else None)
            db.session.commit()
        except policy_presets.PresetError as exc:
            db.session.rollback()
            return self.response(404, message=str(exc))
        return self.response(200, result=dict(result, citation=policy_presets.PRESETS[code].citation))
