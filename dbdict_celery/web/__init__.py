"""What dbdict serves over HTTP: the dashboard and the Prometheus metrics of job tables.

It sits above the search layer (its study pages read studies) and below the CLI, which
starts it (`dbdict dashboard`, `dbdict metrics-server`).
"""
