"""The live runtime: how a committed event reaches every connected reader of this process.

One job per module, each depending only on those below it:

    broadcast  a committed write -> the channel layer (on commit, on the server's loop)
    layer      the channel layer -> this process (one channel, the blogs' groups, the receiver)
    feed       events in any order -> a gapless, ordered run, and the ring replays come from
    snapshots  the snapshot a new reader starts from, read once for readers arriving together
    catchup    what a (re)connecting reader is sent before live events: ring, log or snapshot
    log        the database reads the runtime makes, off the event loop
    stream     one blog on this process: feed + readers + snapshots + healing from the log
    hub        the registry of streams, the slug -> id cache, and the heartbeat
    wire       one websocket's outgoing side (daphne's fast path behind a probe, or ASGI send)
    eventstream  one SSE response's outgoing side, the same calls as a wire
    delivery   one reader, whatever its transport: catch-up, held events, live, cut loose
    gcpolicy   full garbage collections between deliveries, never in the middle of one

The transports translate between a connection and these: the websocket consumer
(liveblog/consumers.py) and the event stream (liveblog/sse.py). ARCHITECTURE.md
at the repository root follows a post through them.
"""
