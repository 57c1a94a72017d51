"""Access (权限): the role names (once), the one row-scoping function, the security manager,
privacy of complainants' personal data, and the branch hierarchy of units.
"""
