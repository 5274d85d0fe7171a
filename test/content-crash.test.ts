// berthd killed with SIGKILL in the middle of a large Content.Write: after a restart the
// partial ingest is there with its offset, resuming from that offset commits a blob that
// verifies, and nothing half-written ever shows up as a blob.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { ContentWriteSession, WRITE_CHUNK } from "../src/client/content.js";
import { type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";

const SIZE = 64 << 20;
const KILL_AT = 24 << 20;

let daemons: Daemon[] = [];
after(async () => {
  for (const d of daemons) await d.stop("SIGKILL");
  daemons[0]?.cleanup();
});

test("kill -9 mid-write, restart, resume from the reported offset, commit", async () => {
  const data = randomBytes(SIZE);
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  const first = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  daemons.push(first);
  const contentDir = join(first.root, "io.containerd.content.v1.content");

  const session = new ContentWriteSession(first.client().service(Content));
  await session.stat({ ref: "big", total: SIZE, expected: digest });
  let killed = false;
  const writing = (async () => {
    for (let at = 0; at < SIZE; at += WRITE_CHUNK) {
      const pending = session.write(data.subarray(at, at + WRITE_CHUNK));
      if (!killed && at >= KILL_AT) {
        killed = true;
        // While this chunk is on its way in (or being written out).
        setTimeout(() => first.proc.kill("SIGKILL"), 1);
      }
      await pending;
    }
  })();
  await assert.rejects(writing, "the stream breaks when berthd dies");
  assert.ok(killed);
  await first.stop("SIGKILL");

  const second = await startBerthd({ dir: first.dir, config: GC_ON_DEMAND_CONFIG });
  daemons = [first, second];
  const content = second.client().service(Content);
  const blobs = () => {
    try {
      return readdirSync(join(contentDir, "blobs", "sha256"));
    } catch {
      return [];
    }
  };
  assert.deepEqual(blobs(), [], "no blob before the commit");
  for await (const r of content.list({})) assert.deepEqual(r.info, []);

  const { status } = await content.status({ ref: "big" });
  const offset = Number(status?.offset);
  assert.ok(offset >= KILL_AT && offset < SIZE, `partial offset ${offset}`);
  assert.equal(status?.total, BigInt(SIZE));
  const [ingestDir] = readdirSync(join(contentDir, "ingest"));
  assert.equal(statSync(join(contentDir, "ingest", ingestDir!, "data")).size, offset);

  const resume = new ContentWriteSession(content);
  const stat = await resume.stat({ ref: "big", total: SIZE, expected: digest });
  assert.equal(Number(stat.offset), offset);
  assert.equal(
    stat.digest,
    `sha256:${createHash("sha256").update(data.subarray(0, offset)).digest("hex")}`,
    "the resumed hash covers exactly the bytes on disk",
  );
  for (let at = offset; at < SIZE; at += WRITE_CHUNK)
    await resume.write(data.subarray(at, Math.min(SIZE, at + WRITE_CHUNK)));
  const done = await resume.commit(SIZE, digest);
  await resume.close();
  assert.equal(done.digest, digest);

  const hash = createHash("sha256");
  let read = 0;
  for await (const r of content.read({ digest })) {
    hash.update(r.data);
    read += r.data.length;
  }
  assert.equal(read, SIZE);
  assert.equal(`sha256:${hash.digest("hex")}`, digest);
  assert.deepEqual(blobs(), [digest.slice(7)]);
  assert.deepEqual(readdirSync(join(contentDir, "ingest")), []);
});
