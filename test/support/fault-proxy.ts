// A small HTTP proxy in front of a test registry that injects the faults a real registry does
// not produce on demand: a blob with one byte changed, a connection dropped mid-blob, a blob
// that stops arriving, and any answer a test writes itself (a 401, an oversized manifest). It
// streams what it forwards and records every request it sees (for Range and ?ns= checks).
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request } from "undici";

export type BlobFault =
  /** Same length, the middle byte flipped: only the digest can tell. */
  | { kind: "corrupt" }
  /**
   * A request without Range gets afterBytes and then the connection dropped (after a pause, so
   * that the client has read them); a resumed request, with Range, is served.
   */
  | { kind: "drop"; afterBytes: number }
  /** Every response sends afterBytes and then nothing, the connection left open. */
  | { kind: "stall"; afterBytes: number };

/** How long a dropped connection stays open after its last bytes. */
const DROP_PAUSE_MS = 200;

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
}

/** Answers a request itself and returns true, or returns false to let the proxy forward it. */
export type Answer = (req: IncomingMessage, res: ServerResponse) => boolean;

export class FaultProxy {
  /** Faults by blob digest, applied to GET /v2/<name>/blobs/<digest>. */
  readonly blobFaults = new Map<string, BlobFault>();
  readonly seen: SeenRequest[] = [];
  answer: Answer | undefined;
  /** "127.0.0.1:PORT" once started. */
  host = "";
  private server: Server | undefined;

  constructor(private readonly upstream: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      this.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.host = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    if (this.server === undefined) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }

  /** The requests seen for a blob. */
  blobRequests(digest: string): SeenRequest[] {
    return this.seen.filter(
      (s) => s.method === "GET" && new URL(s.url, "http://x").pathname.endsWith(`/blobs/${digest}`),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.answer?.(req, res)) return;
    const url = req.url ?? "/";
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(new URL(url, "http://x").pathname)?.[1];
    let fault = req.method === "GET" && digest !== undefined ? this.blobFaults.get(digest) : undefined;
    if (fault?.kind === "drop" && req.headers.range !== undefined) fault = undefined;
    const up = await request(`http://${this.upstream}${url}`, {
      method: req.method as "GET",
      headers: { ...req.headers, host: this.upstream },
    });
    const headers = Object.fromEntries(
      Object.entries(up.headers).filter(([k]) => k !== "transfer-encoding" && k !== "connection"),
    );
    res.writeHead(up.statusCode, headers as Record<string, string>);
    if (req.method === "HEAD" || fault === undefined || up.statusCode >= 300) {
      for await (const chunk of up.body) if (!res.write(chunk)) await once(res, "drain");
      res.end();
      return;
    }
    const middle = Number(up.headers["content-length"]) >> 1;
    let sent = 0;
    for await (const raw of up.body) {
      let chunk = Buffer.from(raw as Buffer);
      if (fault.kind === "corrupt" && sent <= middle && middle < sent + chunk.length)
        chunk[middle - sent]! ^= 0xff;
      if (fault.kind !== "corrupt" && sent + chunk.length >= fault.afterBytes) {
        chunk = chunk.subarray(0, fault.afterBytes - sent);
        res.write(chunk);
        up.body.destroy();
        // A stall keeps the response open.
        if (fault.kind === "drop") setTimeout(() => res.socket?.destroy(), DROP_PAUSE_MS);
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) await once(res, "drain");
    }
    res.end();
  }
}
