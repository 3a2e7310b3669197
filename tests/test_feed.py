"""The feed: ordering as a plain object. No database, no event loop."""

from liveblog.live.feed import Feed, Frame


def feed(head=0, recent=(), window=5, epoch="E1"):
    return Feed(head=head, epoch=epoch, recent=list(recent), window=window)


def seqs(frames):
    return [frame.seq for frame in frames]


def test_the_next_seq_goes_out_at_once():
    f = feed()
    run = f.accept(1, "one")
    assert seqs(run) == [1] and run[0].text == "one"
    assert f.head == 1 and f.missing_upto is None


def test_an_early_event_waits_and_reports_the_gap_before_it():
    f = feed()
    assert f.accept(3, "three") == []
    assert f.missing_upto == 2
    assert seqs(f.accept(1, "one")) == [1]
    assert f.missing_upto == 2
    assert seqs(f.accept(2, "two")) == [2, 3]  # the run it completes, in order
    assert f.head == 3 and f.missing_upto is None


def test_duplicates_and_old_events_are_dropped():
    f = feed(head=2, recent=[(1, "one"), (2, "two")])
    assert f.accept(1, "one") == [] and f.accept(2, "two") == []
    assert seqs(f.accept(3, "three")) == [3]
    assert f.accept(3, "three") == []
    assert f.ring_seqs() == [1, 2, 3]


def texts(frames):
    return [frame.text for frame in frames]


def test_the_ring_keeps_the_newest_window_and_replays_from_it():
    f = feed(window=3)
    for seq in range(1, 6):
        f.accept(seq, f"e{seq}")
    assert f.ring_seqs() == [3, 4, 5]
    assert texts(f.replay(2)) == ["e3", "e4", "e5"]
    assert texts(f.replay(4)) == ["e5"]
    assert f.replay(5) == []
    assert f.replay(1) is None  # evicted
    assert f.replay(6) is None  # ahead of the head


def test_a_replay_hands_out_the_frames_that_went_out_live():
    """The same objects: their encodings (websocket, event stream) are made once per process,
    for live readers and replayed ones alike."""
    f = feed(window=3)
    live = [frame for seq in range(1, 4) for frame in f.accept(seq, f"e{seq}")]
    assert all(a is b for a, b in zip(f.replay(0), live, strict=True))
    assert {frame.epoch for frame in live} == {"E1"}


def test_a_feed_seeded_from_the_log_replays_what_it_was_given():
    f = feed(head=6, recent=[(3, "e3"), (4, "e4"), (5, "e5"), (6, "e6")], window=4)
    replayed = f.replay(2)
    assert texts(replayed) == ["e3", "e4", "e5", "e6"]
    assert [(frame.epoch, frame.seq) for frame in replayed] == [("E1", n) for n in range(3, 7)]
    assert f.replay(1) is None


def test_an_empty_ring_replays_only_from_the_head():
    f = feed(head=4)  # started over at a head with no events kept (a reset seen by heartbeat)
    assert f.replay(4) == []
    assert f.replay(3) is None


def test_a_restart_forgets_the_old_epoch():
    f = feed()
    f.accept(1, "one")
    f.accept(3, "three")
    f.restart(head=0, epoch="E2")
    assert (f.head, f.epoch, f.ring_seqs(), f.missing_upto) == (0, "E2", [], None)
    assert seqs(f.accept(1, "new one")) == [1]


def test_a_frame_is_framed_once_for_everyone():
    frame = Frame(1, "text")
    calls = []

    def make(text):
        calls.append(text)
        return f"framed {text}"

    assert frame.framed(make) == frame.framed(make) == "framed text"
    assert calls == ["text"]
