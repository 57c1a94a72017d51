"""Seed data: the policy defaults every installation gets, the demo organisation and
cases, and the bulk generator for load tests.
"""
