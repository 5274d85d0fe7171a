import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { after, describe, test } from "node:test";
import { lgetxattr } from "../sys/xattr.js";
import { diffTar } from "./diff.js";
import { buildTrees, NET_BIND_CAPABILITY, readTar } from "./diff-fixtures.js";

const base = mkdtempSync(join(tmpdir(), "berth-diff-test-"));
after(() => rmSync(base, { recursive: true, force: true }));

const LONG_DIR = `new/${"long-name-".repeat(12)}`;

describe("diffTar of two real trees", () => {
  const { lower, upper } = buildTrees(join(base, "trees"));

  test("lists every change in walk order, parents first, with whiteouts and hardlinks", async () => {
    const entries = readTar(await buffer(diffTar(lower, upper)));
    assert.deepEqual(
      entries.map((e) => `${e.typeflag} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ""}`),
      [
        "0 dir2file",
        "5 etc/",
        "0 etc/chmod.sh",
        "0 etc/same-size.conf",
        "5 file2dir/",
        "0 file2dir/inner.txt",
        "0 .wh.gone.txt",
        "0 .wh.gonedir",
        "5 links/",
        "0 links/one",
        "1 links/two -> links/one",
        "5 new/",
        "3 new/bigdev",
        "6 new/fifo",
        "0 new/hard-a",
        "1 new/hard-b -> new/hard-a",
        "0 new/keep-link",
        "1 etc/keep.conf -> new/keep-link",
        `5 ${LONG_DIR}/`,
        `0 ${LONG_DIR}/${"x".repeat(90)}`,
        "3 new/null",
        "0 new/ünïcode",
        "2 sym -> usr/bin/tool",
        "5 usr/",
        "5 usr/bin/",
        "0 usr/bin/capable",
        "0 usr/bin/setuid",
        "0 usr/bin/tool",
      ],
    );
    const byName = new Map(entries.map((e) => [e.name, e]));
    const get = (name: string) => byName.get(name) ?? assert.fail(`${name} missing`);
    assert.equal(get("etc/chmod.sh").mode, 0o755);
    assert.equal(get("etc/same-size.conf").data.toString(), "bbbb\n");
    const suid = get("usr/bin/setuid");
    assert.deepEqual([suid.mode, suid.uid, suid.gid], [0o4755, 1234, 5678]);
    assert.deepEqual(get("usr/bin/capable").pax.get("SCHILY.xattr.security.capability"), NET_BIND_CAPABILITY);
    assert.deepEqual(
      get("usr/bin/tool").pax.get("SCHILY.xattr.user.note"),
      Buffer.from([0xff, 0x00, 0x80, 0x0a]),
    );
    assert.deepEqual([get("new/null").devmajor, get("new/null").devminor], [1, 3]);
    assert.deepEqual([get("new/bigdev").devmajor, get("new/bigdev").devminor], [300, 70000]);
    const whiteout = get(".wh.gone.txt");
    assert.deepEqual([whiteout.mode, whiteout.size, whiteout.mtime], [0, 0, 0]);
    assert.equal(get("links/two").size, 0);
    assert.equal(get("dir2file").data.toString(), "now a file\n");
  });

  test("GNU tar reads the layer: names, long paths, PAX records and hardlinks", async () => {
    const tar = join(base, "layer.tar");
    writeFileSync(tar, await buffer(diffTar(lower, upper)));
    const listing = execFileSync("tar", ["--xattrs", "--xattrs-include=*", "-tvf", tar], {
      encoding: "utf8",
    });
    assert.match(listing, /new\/ünïcode/);
    assert.match(listing, new RegExp(`${LONG_DIR}/x{90}`));
    assert.match(listing, /etc\/keep\.conf link to new\/keep-link/);
    const out = join(base, "gnu");
    mkdirSync(out);
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "-xpf", tar, "-C", out]);
    assert.deepEqual(lgetxattr(join(out, "usr/bin/capable"), "security.capability"), NET_BIND_CAPABILITY);
    assert.deepEqual(
      lgetxattr(join(out, "usr/bin/tool"), "user.note"),
      Buffer.from([0xff, 0x00, 0x80, 0x0a]),
    );
  });

  test("identical trees give an empty layer", async () => {
    const entries = readTar(await buffer(diffTar(lower, lower)));
    assert.deepEqual(entries, []);
  });

  test("a source date epoch caps the times written", async () => {
    const epoch = new Date(1_600_000_000_000);
    const entries = readTar(await buffer(diffTar(lower, upper, { sourceDateEpoch: epoch })));
    assert.ok(entries.length > 0);
    for (const e of entries) assert.ok(e.mtime <= 1_600_000_000, `${e.name} has mtime ${e.mtime}`);
  });

  test("an aborted diff ends the stream with the abort reason", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop here"));
    await assert.rejects(buffer(diffTar(lower, upper, { signal: controller.signal })), /stop here/);
  });

  test("a missing tree is an error naming the path", async () => {
    await assert.rejects(buffer(diffTar(lower, join(base, "nowhere"))), /nowhere/);
  });
});
