"""Formal documents (文书): Jinja templates printed to PDF by WeasyPrint, document numbers
(文号), the customer complaint record form and the regulator reply report.
"""
