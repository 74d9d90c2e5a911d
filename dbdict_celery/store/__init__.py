"""The store layer: the job table, its schema and engine, and the one door to its SQL.

Everything here reads or changes rows; nothing here knows of Celery, so the
table works the same under `dbdict sql` (no broker) and under workers.
"""
