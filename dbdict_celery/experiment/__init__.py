"""The experiment layer: parameters, sweeps, channels, exproot transfer and the local runner.

It knows nothing of SQL or Celery: an experiment runs here exactly as it
runs on a worker, which is what makes a job reproducible by hand.
"""
