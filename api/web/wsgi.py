"""WSGI entry point for gunicorn (``gunicorn api.wsgi:app``): the app built from the environment."""

import gc

from api.web.app import create_app

app = create_app()
# What start-up made (modules, the app, its services: ~220k objects) lives as long as the process: keep it out of
# the collector's full passes, each of which would otherwise walk all of it (~50-90 ms holding the GIL, stalling
# every thread of the worker: the slowest 1 % of requests).
gc.collect()
gc.freeze()
