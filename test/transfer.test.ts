// The Streaming and Transfer services over gRPC against a real berthd: archives imported
// through a client stream (with and without unpack), exported through one and imported again
// elsewhere, images tagged, progress received on a progress stream, and bad requests refused.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { Images } from "../src/api/services/images/v1/images_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import { StreamInitSchema, Streaming } from "../src/api/services/streaming/v1/streaming_pb.js";
import { Transfer } from "../src/api/services/transfer/v1/transfer_pb.js";
import { ImageStoreSchema } from "../src/api/types/transfer/imagestore_pb.js";
import {
  ImageExportStreamSchema,
  ImageImportStreamSchema,
} from "../src/api/types/transfer/importexport_pb.js";
import { type Progress, ProgressSchema } from "../src/api/types/transfer/progress_pb.js";
import { OCIRegistrySchema } from "../src/api/types/transfer/registry_pb.js";
import { DataSchema, WindowUpdateSchema } from "../src/api/types/transfer/streaming_pb.js";
import type { BerthClient } from "../src/client/client.js";
import { chainIds } from "../src/core/images/chainid.js";
import { packAny, typeNameOf, unpackAny } from "../src/pkg/rpc/any.js";
import { AsyncQueue } from "../src/pkg/rpc/queue.js";
import { type Daemon, startBerthd } from "./support/daemon.js";
import { type BuiltImage, buildImage, writeOciArchive } from "./support/images.js";

const rejectsWith = (code: Code, message?: RegExp) => (err: unknown) =>
  err instanceof ConnectError && err.code === code && (message === undefined || message.test(err.message));

/** A client's end of a Streaming call, opened and acknowledged. */
interface ClientStream {
  send(a: Any): void;
  /** Ends the client's side. */
  end(): void;
  /** Cancels the call. */
  cancel(): void;
  /** The daemon's messages after the acknowledgement, ending when the daemon closes the stream. */
  responses: AsyncIterator<Any>;
}

async function openStream(client: BerthClient, id: string): Promise<ClientStream> {
  const requests = new AsyncQueue<Any>();
  requests.push(packAny(StreamInitSchema, { id }));
  const abort = new AbortController();
  // No deadline: a stream lives as long as the transfer using it. (connect-node also keeps a
  // deadline timer running after a bidi call failed before the client finished sending.)
  const responses = client
    .service(Streaming)
    .stream(requests.generate(), { timeoutMs: 0, signal: abort.signal })
    [Symbol.asyncIterator]();
  // Once the daemon ends the call, the client's side ends too (else the call stays half open).
  const next = () =>
    responses.next().then(
      (r) => {
        if (r.done) requests.end();
        return r;
      },
      (err: unknown) => {
        requests.end();
        throw err;
      },
    );
  const ack = await next();
  assert.equal(ack.done, false);
  assert.equal(typeNameOf(ack.value as Any), "google.protobuf.Empty");
  return {
    send: (a) => requests.push(a),
    end: () => requests.end(),
    cancel: () => {
      abort.abort();
      requests.end();
    },
    responses: { next },
  };
}

/** Sends data as the client side of an import stream: never more than the daemon's window. */
async function sendBytes(stream: ClientStream, data: Buffer): Promise<{ maxOutstanding: number }> {
  let credit = 0;
  let offset = 0;
  let maxOutstanding = 0;
  let granted = 0;
  for (;;) {
    while (credit > 0 && offset < data.length) {
      const n = Math.min(32 * 1024, credit, data.length - offset);
      stream.send(packAny(DataSchema, { data: data.subarray(offset, offset + n) }));
      credit -= n;
      offset += n;
    }
    maxOutstanding = Math.max(maxOutstanding, granted);
    if (offset === data.length) stream.end();
    const r = await stream.responses.next();
    if (r.done) break;
    if (typeNameOf(r.value) !== WindowUpdateSchema.typeName) continue;
    const update = unpackAny(WindowUpdateSchema, r.value, "window").update;
    credit += update;
    granted = update;
  }
  assert.equal(offset, data.length, "the daemon closed the stream before taking all data");
  return { maxOutstanding };
}

/** Receives an export stream's bytes, granting the daemon 64 KiB windows. */
async function receiveBytes(stream: ClientStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  let window = 0;
  for (;;) {
    if (window < 64 * 1024) {
      stream.send(packAny(WindowUpdateSchema, { update: 64 * 1024 }));
      window += 64 * 1024;
    }
    const r = await stream.responses.next();
    if (r.done) break;
    assert.equal(typeNameOf(r.value), DataSchema.typeName);
    const { data } = unpackAny(DataSchema, r.value, "data");
    assert.ok(data.length <= window, "the daemon sent more than the window");
    window -= data.length;
    parts.push(Buffer.from(data));
  }
  return Buffer.concat(parts);
}

async function collectProgress(stream: ClientStream): Promise<Progress[]> {
  const out: Progress[] = [];
  for (let r = await stream.responses.next(); !r.done; r = await stream.responses.next())
    out.push(unpackAny(ProgressSchema, r.value, "progress"));
  return out;
}

const amd64 = { os: "linux", architecture: "amd64" };

describe("transfer service", () => {
  let d: Daemon;
  let image: BuiltImage;
  let archive: Buffer;
  const NAME = "docker.io/library/busybox-test:oci";

  before(async () => {
    d = await startBerthd();
    image = await buildImage({ compression: "gzip" });
    await writeOciArchive(join(d.dir, "oci.tar"), image, { name: NAME });
    archive = readFileSync(join(d.dir, "oci.tar"));
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  async function importArchive(
    client: BerthClient,
    data: Buffer,
    store: MessageInitShape<typeof ImageStoreSchema>,
    id: string,
  ): Promise<Progress[]> {
    const input = await openStream(client, `import-${id}`);
    const progress = await openStream(client, `progress-${id}`);
    const sent = sendBytes(input, data);
    const events = collectProgress(progress);
    // When the transfer fails, these end with it; its error is the one that matters.
    sent.catch(() => {});
    events.catch(() => {});
    await client.service(Transfer).transfer(
      {
        source: packAny(ImageImportStreamSchema, { stream: `import-${id}` }),
        destination: packAny(ImageStoreSchema, store),
        options: { progressStream: `progress-${id}` },
      },
      { timeoutMs: 60_000 },
    );
    const { maxOutstanding } = await sent;
    assert.ok(maxOutstanding <= 64 * 1024, `window grants of ${maxOutstanding} bytes`);
    return events;
  }

  test("import through a stream with unpack: image listed, progress reported, snapshots committed", async () => {
    const client = d.client("imp");
    const events = await importArchive(
      client,
      archive,
      {
        extraReferences: [{ name: "import-test", isPrefix: true, allowOverwrite: true }],
        platforms: [amd64],
        unpacks: [{ platform: amd64, snapshotter: "overlayfs" }],
      },
      "unpack",
    );
    const { image: stored } = await client.service(Images).get({ name: NAME });
    assert.equal(stored?.target?.digest, image.manifestDigest);
    assert.deepEqual(
      events.map((e) => [e.event, e.name]),
      [
        ["Importing", ""],
        ["saved", NAME],
        ["Completed import", ""],
      ],
    );
    assert.equal(events[1]!.desc?.digest, image.manifestDigest);
    const top = chainIds(image.diffIds).at(-1)!;
    const { info } = await client.service(Snapshots).stat({ snapshotter: "overlayfs", key: top });
    assert.equal(info?.name, top);
    // The temporary lease is gone: the image alone holds the content.
    const { leases } = await client.service(Leases).list({});
    assert.deepEqual(leases, []);
  });

  test("import without unpack of a gzipped archive: image listed, no snapshots", async () => {
    const client = d.client("nounpack");
    await importArchive(
      client,
      gzipSync(archive),
      { extraReferences: [{ name: "import-test", isPrefix: true, allowOverwrite: true }] },
      "plain",
    );
    const { images } = await client.service(Images).list({});
    assert.deepEqual(
      images.map((i) => [i.name, i.target?.digest]),
      [[NAME, image.manifestDigest]],
    );
    const infos = [];
    for await (const r of client.service(Snapshots).list({ snapshotter: "overlayfs" })) infos.push(...r.info);
    assert.deepEqual(infos, []);
  });

  test("export through a stream, re-import elsewhere: same digests", async () => {
    const client = d.client("imp");
    const out = await openStream(client, "export-1");
    const received = receiveBytes(out);
    await client.service(Transfer).transfer(
      {
        source: packAny(ImageStoreSchema, { name: NAME }),
        destination: packAny(ImageExportStreamSchema, { stream: "export-1", platforms: [amd64] }),
      },
      { timeoutMs: 60_000 },
    );
    const exported = await received;
    assert.ok(exported.length > 1024);

    const other = d.client("reimported");
    await importArchive(
      other,
      exported,
      { extraReferences: [{ name: "import-test", isPrefix: true, allowOverwrite: true }] },
      "again",
    );
    const { image: again } = await other.service(Images).get({ name: NAME });
    assert.equal(again?.target?.digest, image.manifestDigest);
    const digests = async (c: BerthClient) => {
      const all: string[] = [];
      for await (const r of c.service(Content).list({})) all.push(...r.info.map((i) => i.digest));
      return all.sort();
    };
    const expected = [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
    for (const dg of expected) assert.ok((await digests(other)).includes(dg), `${dg} re-imported`);
  });

  test("tag: image store to image store copies the record under a new name with labels", async () => {
    const client = d.client("imp");
    await client.service(Transfer).transfer({
      source: packAny(ImageStoreSchema, { name: NAME }),
      destination: packAny(ImageStoreSchema, { name: "docker.io/library/tagged:1", labels: { team: "x" } }),
    });
    const { image: tagged } = await client.service(Images).get({ name: "docker.io/library/tagged:1" });
    assert.equal(tagged?.target?.digest, image.manifestDigest);
    assert.deepEqual(tagged?.labels, { team: "x" });
    await assert.rejects(
      client.service(Transfer).transfer({
        source: packAny(ImageStoreSchema, { name: "docker.io/library/absent:1" }),
        destination: packAny(ImageStoreSchema, { name: "docker.io/library/tagged:2" }),
      }),
      rejectsWith(Code.NotFound, /absent/),
    );
  });

  test("unknown types and unsupported pairs answer Unimplemented naming the type URLs", async () => {
    const transfer = d.client("imp").service(Transfer);
    await assert.rejects(
      transfer.transfer({
        source: create(AnySchema, { typeUrl: "containerd.types.transfer.Bogus", value: new Uint8Array() }),
        destination: packAny(ImageStoreSchema, { name: NAME }),
      }),
      rejectsWith(
        Code.Unimplemented,
        /containerd\.types\.transfer\.Bogus to containerd\.types\.transfer\.ImageStore/,
      ),
    );
    await assert.rejects(
      transfer.transfer({
        source: packAny(ImageStoreSchema, { name: NAME }),
        destination: packAny(ImageImportStreamSchema, { stream: "x" }),
      }),
      rejectsWith(Code.Unimplemented, /ImageStore to containerd\.types\.transfer\.ImageImportStream/),
    );
  });

  test("bad values answer InvalidArgument", async () => {
    const transfer = d.client("imp").service(Transfer);
    const exportTo = packAny(ImageExportStreamSchema, { stream: "nowhere" });
    await assert.rejects(
      transfer.transfer({ destination: exportTo }),
      rejectsWith(Code.InvalidArgument, /source is required/),
    );
    await assert.rejects(
      transfer.transfer({
        source: create(AnySchema, {
          typeUrl: ImageStoreSchema.typeName,
          value: new Uint8Array([0x0a, 0x20, 0x61]),
        }),
        destination: packAny(ImageStoreSchema, { name: "x" }),
      }),
      rejectsWith(Code.InvalidArgument, /malformed containerd\.types\.transfer\.ImageStore/),
    );
    await assert.rejects(
      transfer.transfer({
        source: packAny(ImageStoreSchema, { name: NAME }),
        destination: packAny(ImageStoreSchema, { name: "y", platforms: [{ os: "", architecture: "amd64" }] }),
      }),
      rejectsWith(Code.InvalidArgument, /os and architecture/),
    );
    await assert.rejects(
      transfer.transfer({
        source: packAny(ImageImportStreamSchema, { stream: "" }),
        destination: packAny(ImageStoreSchema, { name: "z" }),
      }),
      rejectsWith(Code.InvalidArgument, /stream id is required/),
    );
    await assert.rejects(
      transfer.transfer({
        source: packAny(OCIRegistrySchema, { reference: "UPPER/Case::x" }),
        destination: packAny(ImageStoreSchema, { name: "z" }),
      }),
      rejectsWith(Code.InvalidArgument, /invalid reference/),
    );
  });

  test("a stream id that is not open answers NotFound; a duplicate id AlreadyExists", async () => {
    const client = d.client("imp");
    await assert.rejects(
      client.service(Transfer).transfer({
        source: packAny(ImageImportStreamSchema, { stream: "never-opened" }),
        destination: packAny(ImageStoreSchema, { name: "z" }),
      }),
      rejectsWith(Code.NotFound, /stream "never-opened": not found/),
    );
    await assert.rejects(
      client.service(Transfer).transfer({
        source: packAny(ImageStoreSchema, { name: NAME }),
        destination: packAny(ImageStoreSchema, { name: "z:1" }),
        options: { progressStream: "no-progress" },
      }),
      rejectsWith(Code.NotFound, /no-progress/),
    );
    const first = await openStream(client, "dup");
    await assert.rejects(openStream(client, "dup"), rejectsWith(Code.AlreadyExists, /"dup": already exists/));
    // Streams are per namespace: the same id elsewhere is another stream.
    const elsewhere = await openStream(d.client("other-ns"), "dup");
    // Cancelling the call frees the id.
    first.cancel();
    elsewhere.cancel();
    await new Promise((r) => setTimeout(r, 100));
    (await openStream(client, "dup")).cancel();
  });

  test("a first message that is not a StreamInit is refused", async () => {
    const requests = new AsyncQueue<Any>();
    requests.push(packAny(DataSchema, { data: new Uint8Array([1]) }));
    requests.end();
    const responses = d.client("imp").service(Streaming).stream(requests.generate());
    await assert.rejects(
      (async () => {
        for await (const _ of responses);
      })(),
      rejectsWith(Code.InvalidArgument, /StreamInit/),
    );
  });

  test("an archive that is not one fails the import and leaves no image", async () => {
    const client = d.client("bad");
    await assert.rejects(
      importArchive(
        client,
        Buffer.from("this is not a tar archive at all".repeat(40)),
        { name: "bad:1" },
        "bad",
      ),
      rejectsWith(Code.InvalidArgument),
    );
    const { images } = await client.service(Images).list({});
    assert.deepEqual(images, []);
  });
});
