// The second reference server of `make bench` (bench/README.md): Socket.IO 4.8 as a team would
// run it instead of Liveblog, with connection state recovery, on Node.
//
//     node bench/socketio/server.js [--port 0] [--backlog 1024]
//
// Readers connect to /socket.io/ over a websocket only (no long-polling): Engine.IO's open packet,
// then `40` → `40{"sid":…,"pid":…}` and they are live. Every text frame sent to the plain
// websocket at /control (as to bench/reference.py's) is parsed once and broadcast to every reader
// with `io.emit("event", frame)`; the session-aware adapter keeps it, with its offset, for
// recovery. A reader that comes back within two minutes with `40{"pid":…,"offset":…}` gets the
// packets it missed, then `40{…}`. It prints `listening <port>` once it accepts connections.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { WebSocketServer } from "ws";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    // As `make run` serves Liveblog (bench/processes.py LISTEN_BACKLOG): a reconnect storm of a
    // thousand sockets fits in the accept queue.
    backlog: { type: "string", default: "1024" },
  },
});

const http = createServer((request, response) => {
  response.writeHead(404).end();
});

const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  // /control's upgrades are ours (below): Engine.IO must not close them.
  destroyUpgrade: false,
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
});

const control = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 0 });
control.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    if (!isBinary) {
      io.emit("event", JSON.parse(data.toString()));
    }
  });
});

http.on("upgrade", (request, socket, head) => {
  const path = new URL(request.url, "http://localhost").pathname;
  if (path === "/control") {
    control.handleUpgrade(request, socket, head, (ws) => control.emit("connection", ws, request));
  } else if (!path.startsWith("/socket.io/")) {
    socket.destroy();
  }
});

http.listen({ port: Number(values.port), host: "127.0.0.1", backlog: Number(values.backlog) }, () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});

process.on("SIGTERM", () => process.exit(0));
