"""Messages (消息): the in-app inbox and outbox, e-mail / 企业微信 / 钉钉 deliveries with
retries, and who is told what when a case moves or a clock runs out.
"""
