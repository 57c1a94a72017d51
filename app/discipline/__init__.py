"""Discipline (奖惩): penalty rules and the approval chain, penalty cases and appeals,
notices and 通报, the monthly ledger, chained liability and overtime fines.
"""
