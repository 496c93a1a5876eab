"""What runs inside Locust (gevent): the plugin, the per-process recorder, the
master's aggregate and the files the Locust side writes.

Never imported by the harness process: importing Locust monkey-patches the
interpreter with gevent.
"""
