"""The portal's role names, written once.

They are the names of Flask-AppBuilder roles as users see them (Chinese by default);
``config.FAB_ROLES`` gives each its permissions, and every rule that asks "who may"
refers to these constants.
"""

from __future__ import annotations

CUSTOMER_SERVICE = "客服"
DEPARTMENT_HEAD = "部门主管"
HR_MANAGER = "人事行政经理"
GENERAL_MANAGER = "总经理"
ADMIN = "Admin"

BUSINESS_ROLES = (CUSTOMER_SERVICE, DEPARTMENT_HEAD, HR_MANAGER, GENERAL_MANAGER)
# Roles that see every case of the company.
COMPANY_WIDE = frozenset({HR_MANAGER, GENERAL_MANAGER})
