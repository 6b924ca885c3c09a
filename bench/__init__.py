"""Benchmarks of the running hub (``make bench``; never part of ``make test``).

``python -m bench`` runs the scenarios in ``bench/scenarios/`` against ``integrationhub serve``
in a process of its own, with sinks (``bench/sinks/``) in processes of their own, prints one
table and writes it as JSON under ``bench/results/``. See ``docs/performance.md``.
"""
