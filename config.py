"""Settings of the complaint-handling portal.

Everything here can be overridden from the environment; the permission matrix of
the four business roles (plus Admin) is declared once, in ``FAB_ROLES`` below.
"""

from __future__ import annotations

import os
from datetime import timedelta

from flask_appbuilder.const import AUTH_DB

from app.access.roles import CUSTOMER_SERVICE, DEPARTMENT_HEAD, GENERAL_MANAGER, HR_MANAGER

BASE_DIR = os.path.abspath(os.path.dirname(__file__))
INSTANCE_DIR = os.path.join(BASE_DIR, "instance")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + os.path.join(INSTANCE_DIR, "complaints.db")
    # Heroku-style URLs name the scheme "postgres"; SQLAlchemy wants "postgresql".
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


# --- Flask / security -------------------------------------------------------------
# PORTAL_ENV=production (set by `make serve`) turns on secure cookies and refuses the
# development secret key; development (`make run`) serves plain http on 127.0.0.1.
PORTAL_ENV = os.environ.get("PORTAL_ENV", "development").strip().lower()
PRODUCTION = PORTAL_ENV == "production"
DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
APP_NAME = "投诉处理管理平台"
APP_ICON = "/static/portal/img/logo.svg"
APP_THEME = ""
FAB_BASE_TEMPLATE = "base_portal.html"
FAB_INDEX_VIEW = "app.views.home.HomeView"
FAB_SECURITY_MANAGER_CLASS = "app.views.security.PortalSecurityManager"
AUTH_TYPE = AUTH_DB
AUTH_USER_REGISTRATION = False
AUTH_ROLE_ADMIN = "Admin"
AUTH_ROLE_PUBLIC = "Public"
# Permissions come from FAB_ROLES (config, readable in one place); `flask --app app
# init` syncs the permission rows for roles that administrators create in the UI.
FAB_UPDATE_PERMS = False
FAB_API_SWAGGER_UI = True
FAB_ADD_SECURITY_API = False
FAB_API_MAX_PAGE_SIZE = 100
FAB_PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")
JWT_ACCESS_TOKEN_EXPIRES = timedelta(hours=8)
WTF_CSRF_ENABLED = True
# CSRF is checked by app/web.py: every unsafe request authenticated by the session
# cookie needs the token; API calls carrying a JWT (no cookie authority) do not.
WTF_CSRF_CHECK_DEFAULT = False
WTF_CSRF_TIME_LIMIT = None
PERMANENT_SESSION_LIFETIME = timedelta(hours=10)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
REMEMBER_COOKIE_HTTPONLY = True
REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
REMEMBER_COOKIE_SAMESITE = "Lax"
PREFERRED_URL_SCHEME = "https" if SESSION_COOKIE_SECURE else "http"
MAX_CONTENT_LENGTH = 25 * 1024 * 1024
# Passwords set through the user screens and API: at least 8 characters with letters
# and digits (app/views/security.py).
FAB_PASSWORD_COMPLEXITY_ENABLED = True
FAB_PASSWORD_COMPLEXITY_VALIDATOR = "app.views.security.password_policy"
# Sign-ins are limited per name typed and client address, with a looser ceiling per address
# (app/views/security.py LOGIN_LIMITS, declared on the login form and the JWT login; FAB's
# own per-address limit stays off). The counts live in the database, which every worker
# shares (portaldb://, app/access/login_limits.py); RATELIMIT_STORAGE_URI=redis://host:6379
# uses Redis instead (needs the `redis` package).
AUTH_RATE_LIMITED = False
AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "10 per minute")
AUTH_RATE_LIMIT_PER_ADDRESS = os.environ.get("AUTH_RATE_LIMIT_PER_ADDRESS", "300 per minute")
RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "portaldb://")
RATELIMIT_HEADERS_ENABLED = True

# --- Database -----------------------------------------------------------------------
SQLALCHEMY_DATABASE_URI = _database_url()
SQLALCHEMY_TRACK_MODIFICATIONS = False
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
if SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
    SQLALCHEMY_ENGINE_OPTIONS.update(
        pool_size=int(os.environ.get("DB_POOL_SIZE", "10")),
        max_overflow=int(os.environ.get("DB_MAX_OVERFLOW", "10")),
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "complaint-portal"},
    )

# --- Locale and time ----------------------------------------------------------------
BABEL_DEFAULT_LOCALE = "zh"
BABEL_DEFAULT_FOLDER = os.path.join(BASE_DIR, "translations")
BABEL_TRANSLATION_DIRECTORIES = os.path.join(BASE_DIR, "translations")
LANGUAGES = {
    "zh": {"flag": "cn", "name": "简体中文"},
    "en": {"flag": "gb", "name": "English"},
}
DISPLAY_TIMEZONE = "Asia/Shanghai"

# --- Demo data ----------------------------------------------------------------------
DEMO_MODE = _env_bool("DEMO_MODE", False)
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo123")

# --- Attachments --------------------------------------------------------------------
ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
ATTACHMENT_ALLOWED_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".pdf": "application/pdf",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".txt": "text/plain",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# --- Scheduler and notifications ---------------------------------------------------
SCHEDULER_ENABLED = _env_bool("SCHEDULER_ENABLED", True)
SCHEDULER_SCAN_SECONDS = int(os.environ.get("SCHEDULER_SCAN_SECONDS", "60"))
SCHEDULER_HEARTBEAT_SECONDS = int(os.environ.get("SCHEDULER_HEARTBEAT_SECONDS", "60"))
MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
MAIL_FROM = os.environ.get("MAIL_FROM", "complaints@localhost")
WEBHOOK_WECOM_URL = os.environ.get("WEBHOOK_WECOM_URL", "")
WEBHOOK_DINGTALK_URL = os.environ.get("WEBHOOK_DINGTALK_URL", "")
NOTIFY_MAX_ATTEMPTS = int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "5"))

# --- Roles and permissions -----------------------------------------------------------
# Views declare ``class_permission_name`` (the resource) and map their methods onto
# read / add / edit / delete, so one line here grants a resource on every path (list,
# show, REST, export). What a role may do to a *case* on top of this is decided by the
# state machine (app/complaints/workflow.py) and which rows it sees by app/access/scope.py.
_REFERENCE = "Department|Unit|Staff|Post|Channel|Category|Level|ReplyScript|ServicePhrase"
_RULES = "SlaRule|CalendarOverride|Setting"
_SELF_SERVICE = [
    ["^(UserInfoEditView|ResetMyPasswordView)$", "^can_this_form_(get|post)$"],
    ["^(UserDBModelView)$", "^can_userinfo$"],
    ["^(ResetMyPasswordView|UserInfoEditView)$", "^menu_access$"],
    ["^OpenApi$", "^can_get$"],
    ["^SwaggerView$", "^can_show$"],
    ["^MenuApi$", "^can_get$"],
    ["^Inbox$", "^can_(read|edit)$"],
    ["^(My inbox)$", "^menu_access$"],
    ["^Dashboard$", "^(can_read|menu_access)$"],
    # Every signed-in user may check a text for forbidden service phrases (POST /api/v1/reply-check).
    ["^ReplyCheck$", "^can_check$"],
]


_DISCIPLINE_MENUS = ("Discipline", "Penalties", "Issued documents", "Commendations", "Penalty ledger", "Penalty rules")
_QUALITY_MENUS = ("Service quality", "Analysis reports", "Improvement measures", "Grading runs", "Department grades")


def _grant(resources: str, *perms: str) -> list[str]:
    return [f"^({resources})$", "^can_(" + "|".join(perms) + ")$"]


def _menus(*names: str) -> list[str]:
    return ["^(" + "|".join(names) + ")$", "^menu_access$"]


FAB_ROLES = {
    CUSTOMER_SERVICE: [
        _grant("Complaint", "read", "add"),
        _grant("Customer", "read", "add", "edit"),
        _grant("Attachment", "read", "add"),
        _grant("ComplaintEvent", "read"),
        _grant(_REFERENCE, "read"),
        # Praise calls come in like complaints; penalties stay out of reach (no grant at all).
        _grant("Commendation", "read", "add"),
        # 不满工单: grievances settled on the spot, its own tickets (app/access/scope.py).
        _grant("Grievance", "read", "add"),
        _menus("My registered complaints", "Dissatisfaction tickets"),
        _menus(
            "Complaints",
            "Awaiting sign-in",
            "Register complaint",
            "Customers",
            "Reply scripts",
            "Service phrases",
            "Complaint handling",
            "Discipline",
            "Commendations",
        ),
        *_SELF_SERVICE,
    ],
    DEPARTMENT_HEAD: [
        _grant("Complaint", "read"),
        _grant("Customer", "read"),
        _grant("Attachment", "read", "add"),
        _grant("ComplaintEvent", "read"),
        _grant(_REFERENCE, "read"),
        # Proposes penalties for its own staff (scope and app/discipline/penalties.py decide for whom).
        _grant("Penalty", "read", "add", "edit"),
        _grant("PenaltyRule|Document|Commendation", "read"),
        # Writes its department's improvement measures; objects to its grade during 公示.
        _grant("DepartmentMeasure", "read", "add", "edit"),
        _grant("Grading", "read", "object"),
        # Its department's 不满工单; the cases it registered itself (首问负责制).
        _grant("Grievance", "read"),
        _menus("My registered complaints", "Dissatisfaction tickets"),
        _grant("Cluster", "read"),
        _menus("Clustered complaints"),
        _menus("Service quality", "Improvement measures", "Grading runs", "Department grades"),
        _menus(
            "Complaints",
            "Awaiting sign-in",
            "Escalated to head office",
            "Reply scripts",
            "Service phrases",
            "Complaint handling",
            "Staff",
            "Posts",
            "Organisation",
            "Follow-up visits",
            "Extension requests",
            "Customers served",
            *_DISCIPLINE_MENUS[:4],
            "Penalty rules",
        ),
        *_SELF_SERVICE,
    ],
    HR_MANAGER: [
        _grant("Complaint", "read", "add", "edit"),
        _grant("Customer", "read", "add", "edit"),
        _grant("Attachment", "read", "add", "delete"),
        _grant("ComplaintEvent", "read"),
        _grant(_REFERENCE, "read", "add", "edit", "delete"),
        _grant(_RULES, "read", "add", "edit", "delete"),
        # Reviews proposals, proposes against heads, issues notices and circulars, keeps the rules.
        _grant("Penalty", "read", "add", "edit"),
        _grant("PenaltyRule|Commendation", "read", "add", "edit", "delete"),
        _grant("Document", "read", "add"),
        _grant("Ledger", "read"),
        _grant("PolicyPreset", "read", "load"),
        _menus("Policy presets"),
        _grant("AccessLog", "read"),
        _menus("Access log"),
        # Reads the periodic reports (and regenerates one), every department's measures and grades.
        _grant("Report", "read", "generate"),
        _grant("DepartmentMeasure|Grading", "read"),
        _grant("Grievance", "read", "add"),
        _menus("My registered complaints", "Dissatisfaction tickets"),
        # Clustered complaints: links cases by hand, gives the unified reply.
        _grant("Cluster", "read", "add", "edit"),
        _menus("Clustered complaints"),
        _menus(*_DISCIPLINE_MENUS),
        _menus(*_QUALITY_MENUS),
        _menus(
            "Complaints",
            "Awaiting sign-in",
            "Escalated to head office",
            "Register complaint",
            "Customers",
            "Reply scripts",
            "Service phrases",
            "Complaint handling",
            "Departments",
            "Units",
            "Staff",
            "Posts",
            "Channels",
            "Categories",
            "Levels",
            "Organisation",
            "Rules",
            "SLA rules",
            "Working calendar",
            "Settings",
            "Follow-up visits",
            "Extension requests",
            "Customers served",
        ),
        *_SELF_SERVICE,
    ],
    GENERAL_MANAGER: [
        _grant("Complaint", "read"),
        _grant("Customer", "read"),
        _grant("Attachment", "read"),
        _grant("ComplaintEvent", "read"),
        _grant(_REFERENCE, "read"),
        _grant(_RULES, "read"),
        # Approves or rejects penalties and decides appeals (steps are checked by app/discipline/penalties.py).
        _grant("Penalty|PenaltyRule|Document|Commendation|Ledger", "read"),
        # Reads the reports and measures; sets final grades and confirms them after 公示.
        _grant("Report|DepartmentMeasure", "read"),
        _grant("Grading", "read", "confirm"),
        _grant("Grievance", "read"),
        _menus("Dissatisfaction tickets"),
        _grant("Cluster", "read"),
        _menus("Clustered complaints"),
        _grant("AccessLog", "read"),
        _menus("Access log"),
        _menus(*_DISCIPLINE_MENUS),
        _menus(*_QUALITY_MENUS),
        _menus(
            "Complaints",
            "Awaiting sign-in",
            "Escalated to head office",
            "Customers",
            "Reply scripts",
            "Service phrases",
            "Complaint handling",
            "Departments",
            "Units",
            "Staff",
            "Posts",
            "Organisation",
            "Rules",
            "SLA rules",
            "Working calendar",
            "Follow-up visits",
            "Extension requests",
            "Customers served",
        ),
        *_SELF_SERVICE,
    ],
    # Admin runs the installation: accounts, roles, settings and reference data;
    # it is not a business role and sees no complaint or customer data.
    "Admin": [
        [
            "^(UserDBModelView|RoleModelView|PermissionModelView|ViewMenuModelView|"
            "PermissionViewModelView|UserStatsChartView|GroupModelView|RegisterUserModelView)$",
            "^can_.*$",
        ],
        _menus(
            "Security",
            "List Users",
            "List Roles",
            "List Groups",
            "User's Statistics",
            "Base Permissions",
            "Views/Menus",
            "Permission on Views/Menus",
            "Organisation",
            "Departments",
            "Units",
            "Staff",
            "Posts",
            "Channels",
            "Categories",
            "Levels",
            "Reply scripts",
            "Service phrases",
            "Complaint handling",
            "Rules",
            "SLA rules",
            "Working calendar",
            "Settings",
        ),
        _grant(_REFERENCE, "read", "add", "edit", "delete"),
        _grant(_RULES, "read", "add", "edit", "delete"),
        _grant("PenaltyRule", "read", "add", "edit", "delete"),
        _grant("PolicyPreset", "read", "load"),
        _menus("Policy presets"),
        _grant("AccessLog", "read"),
        _menus("Discipline", "Penalty rules", "Access log"),
        *_SELF_SERVICE,
    ],
}
