"""Sinks: small servers, each run in a process of its own, that receive what the hub delivers.

Each records the arrival time of every delivery (``time.monotonic()``: one clock for every
process on the machine) under the delivery's token, and answers on a control port:

    STATS  -> one JSON line: {"deliveries", "unique", "duplicates"}
    RESET  -> "OK", and forget every delivery so far
    WATCH  -> a line "<token> <monotonic seconds> <id>" per delivery from now on

``python -m bench.sinks.smtp`` and ``python -m bench.sinks.http`` print
``READY <port> <control port>`` once both ports listen.
"""
