"""Screens and REST resources, declared; ``register()`` builds the menu and registers them all.

Each model gets a FAB ``ModelView`` (list/show/add/edit) and a ``ModelRestApi`` under
``/api/v1/<resource>/`` that share one permission name (the resource), so
``config.FAB_ROLES`` grants both at once; row scope comes from ``SCOPED``. The screens and
resources live in one module per feature beside this one (``base`` holds what they share);
behaviour lives in the feature packages under ``app/``, not here.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.i18n import _l
from app.views import choices, openapi
from app.views.clusters import ClusterApi, ClusterView
from app.views.commendations import CommendationApi, CommendationView, StaffCommendationView
from app.views.complaint_api import ComplaintApi
from app.views.complaints import ComplaintView, HeadOfficeComplaintView, UnsignedComplaintView
from app.views.customers import CustomerApi, CustomerComplaintView, CustomerView
from app.views.dashboards import CustomerCountView, DashboardApi, DashboardView, FollowUpView
from app.views.discipline import LedgerView, PenaltyRuleView, PenaltyView
from app.views.discipline_api import LedgerApi, PenaltyApi, PenaltyRuleApi
from app.views.documents import ComplaintRecordFormApi, DocumentApi, DocumentView
from app.views.home import HomeView
from app.views.ownership import GrievanceApi, GrievanceView, MyRegisteredComplaintView
from app.views.phrases import ReplyCheckApi, ReplyScriptApi, ReplyScriptView, ServicePhraseApi, ServicePhraseView
from app.views.posts import PostApi, PostHoldingApi, PostHoldingView, PostView
from app.views.presets import PolicyPresetApi, PolicyPresetView
from app.views.quality import (
    DepartmentGradeApi,
    DepartmentGradeView,
    DepartmentMeasureApi,
    DepartmentMeasureView,
    GradingRunApi,
    GradingRunView,
    ReportApi,
    ReportView,
)
from app.views.reference import (
    AccessLogView,
    CategoryApi,
    CategoryView,
    ChannelApi,
    ChannelView,
    DepartmentApi,
    DepartmentStaffView,
    DepartmentView,
    LevelApi,
    LevelView,
    StaffApi,
    StaffView,
    UnitApi,
    UnitDepartmentView,
    UnitView,
)
from app.views.time_limits import (
    CalendarOverrideApi,
    CalendarOverrideView,
    ExtensionView,
    InboxView,
    NotificationApi,
    SettingView,
    SlaRuleApi,
    SlaRuleView,
)

__all__ = ["HomeView", "register"]

# Menu sections: (category, its label, its icon). Items keep the order in which they are added.
HANDLING = ("Complaint handling", _l("Complaint handling"), "fa-comments")
ORGANISATION = ("Organisation", _l("Organisation"), "fa-building")
RULES = ("Rules", _l("Rules"), "fa-cogs")
DISCIPLINE = ("Discipline", _l("Discipline"), "fa-balance-scale")
QUALITY = ("Service quality", _l("Service quality"), "fa-line-chart")


def register(appbuilder: Any) -> None:
    """Register every screen and resource, and build the menu (labels are translated)."""
    app = current_app
    app.config.setdefault("CACHE_TYPE", "SimpleCache")
    app.config.setdefault("CACHE_DEFAULT_TIMEOUT", choices.TIMEOUT)
    choices.cache.init_app(app)
    _complaint_handling_menu(appbuilder)
    _organisation_menu(appbuilder)
    _rules_menu(appbuilder)
    appbuilder.add_view(InboxView, "My inbox", icon="fa-bell", label=_l("My inbox"))
    _discipline_menu(appbuilder)
    appbuilder.add_view(DashboardView, "Dashboard", icon="fa-bar-chart", label=_l("Dashboard"), href="/dashboard/")
    _quality_menu(appbuilder)
    # Tabs of other screens' show pages.
    for view in (
        DepartmentStaffView,
        UnitDepartmentView,
        CustomerComplaintView,
        StaffCommendationView,
        PostHoldingView,
    ):
        appbuilder.add_view_no_menu(view)
    for api in (
        DepartmentApi,
        UnitApi,
        StaffApi,
        PostApi,
        PostHoldingApi,
        ChannelApi,
        CategoryApi,
        LevelApi,
        ReplyScriptApi,
        CustomerApi,
        ComplaintApi,
        SlaRuleApi,
        CalendarOverrideApi,
        NotificationApi,
        PolicyPresetApi,
        PenaltyRuleApi,
        PenaltyApi,
        LedgerApi,
        DocumentApi,
        ComplaintRecordFormApi,
        CommendationApi,
        DashboardApi,
        ReportApi,
        DepartmentMeasureApi,
        GradingRunApi,
        DepartmentGradeApi,
        ServicePhraseApi,
        ReplyCheckApi,
        GrievanceApi,
        ClusterApi,
    ):
        appbuilder.add_api(api)
    openapi.register(appbuilder)


def _add(appbuilder: Any, section: tuple[str, Any, str], view: type, name: str, label: Any, icon: str) -> None:
    """One menu item of a section (the section's icon is used when its first item creates it)."""
    category, category_label, category_icon = section
    appbuilder.add_view(
        view,
        name,
        icon=icon,
        label=label,
        category=category,
        category_label=category_label,
        category_icon=category_icon,
    )


def _complaint_handling_menu(appbuilder: Any) -> None:
    for view, name, label, icon in (
        (ComplaintView, "Complaints", _l("Complaints"), "fa-list"),
        (UnsignedComplaintView, "Awaiting sign-in", _l("Awaiting sign-in"), "fa-hourglass-half"),
        (HeadOfficeComplaintView, "Escalated to head office", _l("Escalated to the head office"), "fa-level-up"),
    ):
        _add(appbuilder, HANDLING, view, name, label, icon)
    appbuilder.add_link(
        "Register complaint",
        href="/complaintview/add",
        icon="fa-plus",
        label=_l("Register complaint"),
        category=HANDLING[0],
        category_label=HANDLING[1],
    )
    for view, name, label, icon in (
        (CustomerView, "Customers", _l("Customers"), "fa-user"),
        (ReplyScriptView, "Reply scripts", _l("Reply scripts"), "fa-comment"),
        (ExtensionView, "Extension requests", _l("Extension requests"), "fa-hourglass-half"),
        (FollowUpView, "Follow-up visits", _l("Follow-up visits"), "fa-phone-square"),
        (MyRegisteredComplaintView, "My registered complaints", _l("Complaints I registered"), "fa-user-circle"),
        (GrievanceView, "Dissatisfaction tickets", _l("Dissatisfaction tickets"), "fa-commenting"),
        (ClusterView, "Clustered complaints", _l("Clustered complaints"), "fa-object-group"),
    ):
        _add(appbuilder, HANDLING, view, name, label, icon)


def _organisation_menu(appbuilder: Any) -> None:
    for view, name, label, icon in (
        (DepartmentView, "Departments", _l("Departments"), "fa-sitemap"),
        (UnitView, "Units", _l("Units"), "fa-code-fork"),
        (StaffView, "Staff", _l("Staff"), "fa-users"),
        (PostView, "Posts", _l("Posts"), "fa-sitemap"),
        (AccessLogView, "Access log", _l("Access log"), "fa-user-secret"),
        (CustomerCountView, "Customers served", _l("Customers served"), "fa-users"),
    ):
        _add(appbuilder, ORGANISATION, view, name, label, icon)


def _rules_menu(appbuilder: Any) -> None:
    for view, name, label, icon in (
        (ChannelView, "Channels", _l("Channels"), "fa-phone"),
        (CategoryView, "Categories", _l("Categories"), "fa-tags"),
        (LevelView, "Levels", _l("Levels"), "fa-signal"),
        (SlaRuleView, "SLA rules", _l("SLA rules"), "fa-clock-o"),
        (CalendarOverrideView, "Working calendar", _l("Working calendar"), "fa-calendar"),
        (SettingView, "Settings", _l("Settings"), "fa-sliders"),
        (PolicyPresetView, "Policy presets", _l("Policy presets"), "fa-sliders"),
        (ServicePhraseView, "Service phrases", _l("Service phrases"), "fa-commenting-o"),
    ):
        _add(appbuilder, RULES, view, name, label, icon)


def _discipline_menu(appbuilder: Any) -> None:
    for view, name, label, icon in (
        (PenaltyView, "Penalties", _l("Penalties"), "fa-gavel"),
        (DocumentView, "Issued documents", _l("Issued documents"), "fa-file-pdf-o"),
        (CommendationView, "Commendations", _l("Commendations"), "fa-thumbs-up"),
        (LedgerView, "Penalty ledger", _l("Penalty ledger"), "fa-table"),
        (PenaltyRuleView, "Penalty rules", _l("Penalty rules"), "fa-list-ol"),
    ):
        _add(appbuilder, DISCIPLINE, view, name, label, icon)


def _quality_menu(appbuilder: Any) -> None:
    for view, name, label, icon in (
        (ReportView, "Analysis reports", _l("Analysis reports"), "fa-file-text-o"),
        (DepartmentMeasureView, "Improvement measures", _l("Improvement measures"), "fa-wrench"),
        (GradingRunView, "Grading runs", _l("Grading runs"), "fa-trophy"),
        (DepartmentGradeView, "Department grades", _l("Department grades"), "fa-star-half-o"),
    ):
        _add(appbuilder, QUALITY, view, name, label, icon)
