"""Service quality (服务质量): maintained daily aggregates, KPIs and chart series, periodic
analysis reports, and department grading with its 公示.
"""
