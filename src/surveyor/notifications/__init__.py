"""Notifications (SPEC §10, docs/notifications.md): rules per organization tell a webhook or
an e-mail address when a task is canceled or stopped, a task finds new assets, an asset's
outlier score reaches a threshold, or an explorer stays offline.

What a rule, a delivery and a signature are is `core/notifications.py`; here, `watcher`
turns task events and explorers' silences into deliveries in the outbox, `senders` speak
HTTP and SMTP, and `delivery` is the background service that sends, retries and logs.
"""
