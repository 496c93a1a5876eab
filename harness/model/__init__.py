"""Typed data that crosses files or processes (pydantic), and its load/save.

Pure: nothing here opens a socket, starts a process or imports Locust; the
only I/O is reading and writing the documents themselves.
"""
