"""Adaptive search: `dbdict optimize` asks Optuna's samplers for trials, runs each as a job
of the table, and tells the results back; its pruners stop trials that fall behind."""
