"""The ASGI application hands its event loop to the broadcaster when it starts, so that every
broadcast of a committed write runs on the server's loop (one path, liveblog/live/broadcast.py)."""

import asyncio
import threading

import pytest

from liveblog.live import broadcast
from project.asgi import application


async def test_the_lifespan_startup_hands_the_loop_over():
    messages = asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        messages.put_nowait(message)
    sent = []

    async def send(message):
        sent.append(message["type"])

    await asyncio.wait_for(application({"type": "lifespan"}, messages.get, send), timeout=2)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert broadcast._server_loop is asyncio.get_running_loop()


@pytest.mark.django_db(transaction=True)
async def test_a_write_in_another_thread_broadcasts_on_the_server_loop(monkeypatch, blog):
    from channels.testing import HttpCommunicator

    await HttpCommunicator(application, "GET", "/offline/").get_response(timeout=5)
    loop = asyncio.get_running_loop()
    assert broadcast._server_loop is loop  # daphne sends no lifespan: the first request
    sends = []

    async def group_send(blog_id, message):
        sends.append((threading.get_ident(), asyncio.get_running_loop(), message["seq"]))

    monkeypatch.setattr(broadcast, "_group_send", group_send)
    writer = threading.Thread(target=broadcast.event_publish,
                              kwargs={"blog_id": blog.pk, "epoch": "E", "seq": 7, "frame": "{}"})
    writer.start()
    await asyncio.get_running_loop().run_in_executor(None, writer.join, 5)
    for _ in range(100):
        if sends:
            break
        await asyncio.sleep(0)
    assert sends == [(threading.get_ident(), loop, 7)]  # on the server's loop, not the writer's


def test_without_a_server_a_command_sends_and_waits(monkeypatch):
    sends = []

    async def group_send(blog_id, message):
        sends.append(message["seq"])

    monkeypatch.setattr(broadcast, "_group_send", group_send)
    broadcast.event_publish(blog_id=1, epoch="E", seq=3, frame="{}")
    assert sends == [3]  # done before event_publish returned


@pytest.mark.django_db(transaction=True)
async def test_a_request_runs_its_middleware_and_view_in_one_call_on_its_thread(monkeypatch, blog):
    """Every crossing between the loop and a request's thread waits for the other side (a
    fan-out slice, the GIL): a request makes one into its thread and never comes back to the
    loop before its response is made (project/handler.py)."""
    import asgiref.sync
    from channels.testing import HttpCommunicator

    crossings = {"to_thread": 0, "to_loop": 0}
    to_thread, to_loop = asgiref.sync.SyncToAsync.__call__, asgiref.sync.AsyncToSync.__call__

    async def counting_to_thread(self, *args, **kwargs):
        crossings["to_thread"] += 1
        return await to_thread(self, *args, **kwargs)

    def counting_to_loop(self, *args, **kwargs):
        crossings["to_loop"] += 1
        return to_loop(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting_to_thread)
    monkeypatch.setattr(asgiref.sync.AsyncToSync, "__call__", counting_to_loop)
    response = await HttpCommunicator(
        application, "GET", f"/api/liveblog/{blog.slug}/posts", headers=[(b"host", b"127.0.0.1")],
    ).get_response(timeout=5)
    assert response["status"] == 200
    # request_started's receivers, then the chain with the view (the response's close follows
    # once it is sent). Django's own handler made nine calls into the thread, one back.
    assert crossings["to_loop"] == 0 and crossings["to_thread"] <= 3
