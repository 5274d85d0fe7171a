// Hands an accepted unix-socket connection to the HTTP/2 server.
import type http2 from "node:http2";
import type net from "node:net";

export function acceptHttp2Connection(server: http2.Http2Server, socket: net.Socket): void {
  server.emit("connection", socket);
}
