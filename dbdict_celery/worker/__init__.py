"""The worker layer: the Celery app, `run_job`, messages, stop requests and repairs.

The only layer that imports Celery. It also holds the DB channel and runner,
which tie a channel (experiment layer) to a row (store layer).
"""
