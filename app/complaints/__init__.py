"""Complaints (投诉): the lifecycle table, the steps that move a case, intake, attachments,
forbidden service phrases, responsibility disputes, corrective actions, dissatisfaction
tickets and clustered complaints.
"""
