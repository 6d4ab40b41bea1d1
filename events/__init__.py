"""The transactional outbox: an event row is written in the same transaction as the change that causes it.

Depends on nothing of ours, so every app can emit. Delivery (webhooks) lives in a higher app that reads
the outbox through ``events.selectors``.
"""
