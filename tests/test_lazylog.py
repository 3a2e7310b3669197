"""Autobahn's per-connection debug lines are formatted only if written (project/lazylog.py)."""

from pprint import pformat

from project import lazylog


def test_autobahn_formats_its_debug_lines_only_when_they_are_written(monkeypatch):
    from autobahn.websocket import protocol

    monkeypatch.setattr(protocol, "pformat", pformat)
    lazylog.install()
    assert protocol.pformat is lazylog.LazyFormat
    made = []

    class Counted(list):
        def __repr__(self):
            made.append(1)
            return super().__repr__()

    value = protocol.pformat(Counted([("openHandshakeTimeout", 10, "Factory")]))
    assert made == []  # nothing formatted yet
    assert str(value) == "[('openHandshakeTimeout', 10, 'Factory')]"
    assert f"{value}" == str(value) and made


def test_an_autobahn_without_pformat_is_left_alone(monkeypatch):
    from autobahn.websocket import protocol

    monkeypatch.setattr(protocol, "pformat", None)
    lazylog.install()
    assert protocol.pformat is None
