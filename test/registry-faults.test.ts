// Registry faults the real registry cannot produce on demand, served by small local HTTP servers:
// dropped connections (Range resume), wrong content, stalls, unusable 401s, oversized manifests,
// bearer token challenges, redirects to another host, retries, and hosts.toml headers.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalStore } from "../src/core/content/store.js";
import { LocalContentStore } from "../src/core/images/local-stores.js";
import { ContentMetadata } from "../src/core/metadata/content.js";
import { MetadataDB } from "../src/core/metadata/db.js";
import type { Descriptor } from "../src/core/metadata/keys.js";
import { Resolver, type ResolverOptions } from "../src/core/remotes/resolver.js";
import { Code, codeOf } from "../src/pkg/errdefs/errdefs.js";

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const hasCode = (code: Code, message?: RegExp) => (err: unknown) => {
  assert.equal(codeOf(err), code, `${(err as Error).message}`);
  if (message) assert.match((err as Error).message, message);
  return true;
};

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
}

interface FakeServer {
  host: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen[]) => void;

async function fakeServer(handler: Handler, listenHost = "127.0.0.1"): Promise<FakeServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res, seen);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host: `${listenHost}:${port}`,
    port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function withResolver<T>(opts: ResolverOptions, fn: (r: Resolver) => Promise<T>): Promise<T> {
  const resolver = new Resolver({ plainHttp: true, retry: { baseDelayMs: 10 }, ...opts });
  try {
    return await fn(resolver);
  } finally {
    await resolver.close();
  }
}

const BLOB = randomBytes(256 * 1024);
const BLOB_DESC: Descriptor = {
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: sha256(BLOB),
  size: BLOB.length,
  annotations: {},
};
const BLOB_PATH = `/v2/test/app/blobs/${BLOB_DESC.digest}`;

/** Serves BLOB honouring Range; `first` may take over the first request. */
function blobHandler(first?: (res: ServerResponse) => void, honourRange = true): Handler {
  let count = 0;
  return (req, res) => {
    if (req.url !== BLOB_PATH) {
      res.writeHead(404).end();
      return;
    }
    if (count++ === 0 && first) return first(res);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m && honourRange) {
      const from = Number(m[1]);
      res.writeHead(206, {
        "content-length": BLOB.length - from,
        "content-range": `bytes ${from}-${BLOB.length - 1}/${BLOB.length}`,
      });
      res.end(BLOB.subarray(from));
      return;
    }
    res.writeHead(200, { "content-length": BLOB.length });
    res.end(BLOB);
  };
}

/** Sends the head of BLOB and then drops the connection. */
const dropMidway = (res: ServerResponse) => {
  res.writeHead(200, { "content-length": BLOB.length });
  res.write(BLOB.subarray(0, 100 * 1024), () => res.socket?.destroy());
};

describe("fetch faults", () => {
  const servers: FakeServer[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const serve = async (h: Handler) => {
    const s = await fakeServer(h);
    servers.push(s);
    return s;
  };

  test("a connection dropped mid-blob resumes with Range from the bytes received", async () => {
    const s = await serve(blobHandler(dropMidway));
    await withResolver({}, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      assert.deepEqual(await collect(stream), BLOB);
      assert.equal(stream.resumes, 1);
    });
    assert.equal(s.seen.length, 2);
    assert.equal(s.seen[0]!.headers.range, undefined);
    const m = /^bytes=(\d+)-$/.exec(s.seen[1]!.headers.range ?? "");
    assert.ok(m && Number(m[1]) > 0 && Number(m[1]) <= 100 * 1024, s.seen[1]!.headers.range);
  });

  test("a server that ignores Range on resume: the delivered prefix is skipped", async () => {
    const s = await serve(blobHandler(dropMidway, false));
    await withResolver({}, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      assert.deepEqual(await collect(stream), BLOB);
    });
  });

  test("a connection that keeps dropping without progress gives up clearly", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": BLOB.length });
      res.flushHeaders();
      setImmediate(() => res.socket?.destroy());
    });
    await withResolver({}, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      await assert.rejects(collect(stream), hasCode(Code.Unavailable, /kept dropping; 0 of 262144 bytes/));
    });
  });

  test("a wrong digest is refused and nothing is committed by the content store", async () => {
    const wrong = randomBytes(BLOB.length);
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": wrong.length });
      res.end(wrong);
    });
    const dir = mkdtempSync(join(tmpdir(), "berth-faults-"));
    dirs.push(dir);
    const db = await MetadataDB.open(join(dir, "meta"));
    try {
      const content = new ContentMetadata(db, await LocalStore.open(join(dir, "content")), "shared");
      const store = new LocalContentStore(content, "default");
      await withResolver({}, async (r) => {
        const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
        await assert.rejects(
          store.write("fetch-wrong", stream, { size: BLOB_DESC.size, digest: BLOB_DESC.digest }),
          hasCode(Code.DataLoss, /digest mismatch: the registry sent content with digest sha256:/),
        );
        // Unhashed by the fetcher (as a pull fetches), the store's own check refuses it.
        const unverified = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC, undefined, {
          verify: false,
        });
        await assert.rejects(
          store.write("fetch-wrong-2", unverified, { size: BLOB_DESC.size, digest: BLOB_DESC.digest }),
          hasCode(Code.DataLoss, /digest mismatch: the content received has digest sha256:/),
        );
      });
      await assert.rejects(store.info(BLOB_DESC.digest), hasCode(Code.NotFound));
    } finally {
      await db.close();
    }
  });

  test("more bytes than the descriptor's size are refused", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": BLOB.length + 10 });
      res.end(Buffer.concat([BLOB, Buffer.alloc(10)]));
    });
    await withResolver({}, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      await assert.rejects(collect(stream), hasCode(Code.DataLoss, /more than the expected 262144 bytes/));
    });
  });

  test("a stalled transfer fails after the stall timeout with a clear error", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": BLOB.length });
      res.write(BLOB.subarray(0, 1000)); // and then nothing
    });
    await withResolver({ stallTimeoutMs: 300 }, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      const started = Date.now();
      await assert.rejects(collect(stream), hasCode(Code.DeadlineExceeded, /stalled: no data for 0\.3s/));
      assert.ok(Date.now() - started < 5000);
    });
  });

  test("a 401 without a usable challenge is a clear Unauthenticated error", async () => {
    const none = await serve((_req, res) => res.writeHead(401).end());
    const negotiate = await serve((_req, res) =>
      res.writeHead(401, { "www-authenticate": "Negotiate" }).end(),
    );
    await withResolver({}, async (r) => {
      await assert.rejects(
        r.resolve(`${none.host}/test/app:latest`),
        hasCode(
          Code.Unauthenticated,
          /401 Unauthorized without a usable authentication challenge \(no WWW-Authenticate/,
        ),
      );
      await assert.rejects(
        r.resolve(`${negotiate.host}/test/app:latest`),
        hasCode(Code.Unauthenticated, /offered: negotiate/),
      );
    });
  });

  test("a manifest larger than the limit is refused", async () => {
    const big = Buffer.alloc(5 << 20, 0x20);
    // HEAD without Docker-Content-Digest makes the resolver GET the body, which is cut off at the limit.
    const s = await serve((req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": big.length,
      });
      if (req.method === "HEAD") res.end();
      else res.end(big);
    });
    // A HEAD that gives the digest and a size over the limit is refused without a GET.
    const sized = await serve((_req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": big.length,
        "docker-content-digest": sha256(big),
      });
      res.end();
    });
    await withResolver({}, async (r) => {
      await assert.rejects(
        r.resolve(`${s.host}/test/app:latest`),
        hasCode(Code.ResourceExhausted, /manifest is over the 4194304-byte limit/),
      );
      await assert.rejects(
        r.resolve(`${sized.host}/test/app:latest`),
        hasCode(Code.ResourceExhausted, /manifest of 5242880 bytes is over the 4194304-byte limit/),
      );
      assert.deepEqual(
        sized.seen.map((x) => x.method),
        ["HEAD"],
      );
      const fetcher = await r.fetcher(`${sized.host}/test/app:latest`);
      const desc = {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sha256(big),
        size: big.length,
        annotations: {},
      };
      await assert.rejects(fetcher.fetch(desc), hasCode(Code.ResourceExhausted));
    });
  });

  test("a manifest whose body does not match Docker-Content-Digest is refused", async () => {
    const body = Buffer.from('{"schemaVersion":2}');
    const s = await serve((req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "docker-content-digest": sha256(Buffer.from("something else")),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    await withResolver({}, async (r) => {
      await assert.rejects(r.resolve(`${s.host}/test/app:latest`), hasCode(Code.DataLoss, /does not match/));
    });
  });

  test("schema 1 manifests are refused by name", async () => {
    const s = await serve((_req, res) => {
      res
        .writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" })
        .end();
    });
    await withResolver({}, async (r) => {
      await assert.rejects(r.resolve(`${s.host}/test/app:latest`), hasCode(Code.Unimplemented, /schema 1/));
    });
  });

  test("503 and 429 are retried with backoff", async () => {
    let n = 0;
    const manifest = Buffer.from(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
    );
    const s = await serve((_req, res) => {
      n++;
      if (n === 1) return res.writeHead(503).end();
      if (n === 2) return res.writeHead(429, { "retry-after": "0" }).end();
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": manifest.length,
        "docker-content-digest": sha256(manifest),
      });
      res.end();
    });
    await withResolver({}, async (r) => {
      const { descriptor } = await r.resolve(`${s.host}/test/app:latest`);
      assert.equal(descriptor.digest, sha256(manifest));
    });
    assert.equal(s.seen.length, 3);
  });

  test("hosts.toml headers are sent, and redirects do not carry Authorization to another host", async () => {
    const storage = await fakeServer((req, res) => {
      if (!req.url!.startsWith("/storage/blob")) return res.writeHead(404).end();
      res.writeHead(200, { "content-length": BLOB.length });
      res.end(BLOB);
    }, "localhost");
    servers.push(storage);
    const s = await serve((req, res) => {
      if (req.headers.authorization !== "Basic dXNlcjpwYXNz")
        return res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
      res.writeHead(307, { location: `http://${storage.host}/storage/blob?sig=secret-signature` }).end();
    });
    const root = mkdtempSync(join(tmpdir(), "berth-certsd-"));
    dirs.push(root);
    mkdirSync(join(root, s.host));
    writeFileSync(
      join(root, s.host, "hosts.toml"),
      `server = "http://${s.host}"\n[header]\n  x-berth-test = "yes"\n  x-multi = ["a", "b"]\n`,
    );
    const credentials = () => ({ username: "user", secret: "pass" });
    await withResolver({ hostsDir: root, credentials }, async (r) => {
      const stream = await (await r.fetcher(`${s.host}/test/app:latest`)).fetch(BLOB_DESC);
      assert.deepEqual(await collect(stream), BLOB);
    });
    assert.ok(s.seen.every((x) => x.headers["x-berth-test"] === "yes" && x.headers["x-multi"] === "a, b"));
    assert.equal(s.seen.at(-1)!.headers.authorization, "Basic dXNlcjpwYXNz");
    assert.equal(storage.seen.length, 1);
    assert.equal(storage.seen[0]!.headers.authorization, undefined);
    assert.equal(storage.seen[0]!.url, "/storage/blob?sig=secret-signature");
  });
});

describe("bearer token challenges", () => {
  let registry: FakeServer;
  const tokenRequests: URL[] = [];
  const tokenAuth: (string | undefined)[] = [];
  let issued = 0;
  let expiresIn = 300;
  const revoked = new Set<string>();
  const manifest = Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
  );

  before(async () => {
    registry = await fakeServer((req, res) => {
      const url = new URL(req.url!, "http://x");
      if (url.pathname === "/token") {
        tokenRequests.push(url);
        tokenAuth.push(req.headers.authorization);
        const token = `tok-${++issued}`;
        res.writeHead(200, { "content-type": "application/json" });
        // Alternate the two field names registries use.
        res.end(
          JSON.stringify(
            issued % 2 ? { token, expires_in: expiresIn } : { access_token: token, expires_in: expiresIn },
          ),
        );
        return;
      }
      const auth = req.headers.authorization ?? "";
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      const challenge = `Bearer realm="http://${registry.host}/token",service="fake-registry",scope="repository:test/app:pull"`;
      if (token === "" || !token.startsWith("tok-"))
        return res.writeHead(401, { "www-authenticate": challenge }).end();
      if (url.pathname.startsWith("/v2/test/denied/"))
        return res.writeHead(401, { "www-authenticate": `${challenge},error="insufficient_scope"` }).end();
      if (revoked.has(token))
        return res.writeHead(401, { "www-authenticate": `${challenge},error="invalid_token"` }).end();
      if (url.pathname === BLOB_PATH) {
        res.writeHead(200, { "content-length": BLOB.length });
        return res.end(BLOB);
      }
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": manifest.length,
        "docker-content-digest": sha256(manifest),
      });
      res.end();
    });
  });
  after(async () => registry?.close());

  test("a token is fetched once for the scope, cached, refreshed when expired or rejected", async () => {
    const credentials = () => ({ username: "alice", secret: "pw-alice" });
    await withResolver({ credentials }, async (r) => {
      const ref = `${registry.host}/test/app:latest`;
      assert.equal((await r.resolve(ref)).descriptor.digest, sha256(manifest));
      const fetcher = await r.fetcher(ref);
      for (let i = 0; i < 3; i++) assert.deepEqual(await collect(await fetcher.fetch(BLOB_DESC)), BLOB);
      assert.equal(tokenRequests.length, 1);
      assert.equal(tokenRequests[0]!.searchParams.get("service"), "fake-registry");
      assert.deepEqual(tokenRequests[0]!.searchParams.getAll("scope"), ["repository:test/app:pull"]);
      assert.equal(tokenAuth[0], `Basic ${Buffer.from("alice:pw-alice").toString("base64")}`);
      assert.ok(
        registry.seen
          .filter((x) => !x.url.startsWith("/token") && x.headers.authorization)
          .every((x) => x.headers.authorization!.startsWith("Bearer tok-")),
      );

      // The registry rejects the token: a new one is fetched and the request repeated.
      revoked.add("tok-1");
      assert.deepEqual(await collect(await fetcher.fetch(BLOB_DESC)), BLOB);
      assert.equal(tokenRequests.length, 2);

      // A token with a short life is refreshed once it has expired.
      revoked.add("tok-2");
      expiresIn = 1;
      await fetcher.fetch(BLOB_DESC).then(collect);
      assert.equal(tokenRequests.length, 3);
      await fetcher.fetch(BLOB_DESC).then(collect);
      assert.equal(tokenRequests.length, 3);
      await sleep(700);
      await fetcher.fetch(BLOB_DESC).then(collect);
      assert.equal(tokenRequests.length, 4);
    });
  });

  test("a token the registry keeps refusing ends in a clear Unauthenticated error", async () => {
    await withResolver({}, async (r) => {
      await assert.rejects(
        r.resolve(`${registry.host}/test/denied:latest`),
        hasCode(Code.Unauthenticated, /test\/denied:latest: 401 Unauthorized: access denied/),
      );
    });
  });

  test("anonymous: the token request carries no credentials", async () => {
    const before = tokenAuth.length;
    await withResolver({}, async (r) => {
      await r.resolve(`${registry.host}/test/app:latest`);
    });
    assert.equal(tokenAuth.length, before + 1);
    assert.equal(tokenAuth.at(-1), undefined);
  });
});
