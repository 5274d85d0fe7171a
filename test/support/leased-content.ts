// Writes a blob through the Content service under a lease (the containerd-lease header), as a
// client pulling content does.
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Content } from "../../src/api/services/content/v1/content_pb.js";
import { ingest } from "../../src/client/content.js";

export const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** Writes data as a blob in ns under lease; returns its digest. */
export async function putLeased(
  address: string,
  ns: string,
  lease: string,
  data: Uint8Array,
): Promise<string> {
  const sessions = new Http2SessionManager("http://localhost", undefined, {
    createConnection: () => net.connect(address),
  });
  const transport = createGrpcTransport({
    baseUrl: "http://localhost",
    sessionManager: sessions,
    interceptors: [
      (next) => (req) => {
        req.header.set("containerd-namespace", ns);
        req.header.set("containerd-lease", lease);
        return next(req);
      },
    ],
  });
  async function* once() {
    yield data;
  }
  try {
    const ref = `leased-${randomBytes(4).toString("hex")}`;
    const opts = { ref, expectedSize: data.length, expectedDigest: sha256(data) };
    return (await ingest(createClient(Content, transport), once(), opts)).digest;
  } finally {
    sessions.abort();
  }
}
