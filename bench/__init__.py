"""Benchmarks for Liveblog: fan-out latency and replay speed, against a bare `websockets`
reference server on the same machine. Run `python -m bench`; see bench/README.md."""
