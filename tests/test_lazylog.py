"""Autobahn's per-connection debug lines are formatted only if written (project/lazylog.py)."""

from pprint import pformat

import pytest

from project import lazylog


@pytest.fixture
def autobahn_as_shipped(monkeypatch):
    from autobahn import util
    from autobahn.twisted import websocket
    from autobahn.websocket import protocol

    for module in (protocol, websocket):
        for name, original in (("pformat", pformat), ("hltype", util.hltype),
                               ("hlval", util.hlval)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, original)
    return protocol


def test_autobahn_formats_its_debug_lines_only_when_they_are_written(autobahn_as_shipped):
    protocol = autobahn_as_shipped
    lazylog.install()
    lazylog.install()  # twice is once
    assert protocol.pformat.lazy_of is pformat
    made = []

    class Counted(list):
        def __repr__(self):
            made.append(1)
            return super().__repr__()

    value = protocol.pformat(Counted([("openHandshakeTimeout", 10, "Factory")]))
    assert made == []  # nothing formatted yet
    assert str(value) == "[('openHandshakeTimeout', 10, 'Factory')]"
    assert f"{value}" == str(value) and made
    assert "_connectionMade" in str(protocol.hltype(protocol.WebSocketProtocol._connectionMade))
    timings = protocol.Timings()
    timings.track("open")
    assert isinstance(str(timings), str) and "open" in str(timings)


def test_every_use_in_autobahn_is_a_log_argument():
    """The names are swapped for lazy values only where Autobahn passes them to its logger:
    anything else (a concatenation, a comparison) would get a LazyText instead of a str."""
    import importlib
    import inspect
    import re

    for module_name in lazylog.MODULES:
        source = inspect.getsource(importlib.import_module(module_name)).split("\n")
        for number, line in enumerate(source):
            if re.search(r"\b(pformat|hltype|hlval)\(", line) and "def " not in line:
                if line.strip() == "return pformat(self._timings)":
                    continue  # Timings.__str__: install() gives it the real pformat
                opening = "\n".join(source[max(0, number - 8):number + 1])
                assert re.search(r"log\.\w+\(", opening), f"{module_name}:{number + 1}: {line}"
