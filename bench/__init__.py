"""Benchmarks for Liveblog: fan-out and burst latency, a reconnect storm (with the server's
database query count), idle capacity and memory per connection, and replay speed, against a bare
`websockets` reference server on the same machine. Run `python -m bench`; see bench/README.md."""
