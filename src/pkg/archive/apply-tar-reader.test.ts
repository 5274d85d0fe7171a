import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pack } from "tar-stream";
import { Code, codeOf } from "../errdefs/errdefs.js";
import { lsetxattr } from "../sys/xattr.js";
import { type TarHeader, TarReader } from "./apply-tar-reader.js";

const dir = mkdtempSync(join(tmpdir(), "tar-reader-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Feeds data in chunks of `chunk` bytes, to exercise headers split across chunks. */
async function* chunked(data: Buffer, chunk: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
}

async function entries(data: Buffer, chunk = 7919): Promise<Array<TarHeader & { data: Buffer }>> {
  const reader = new TarReader(chunked(data, chunk));
  const out: Array<TarHeader & { data: Buffer }> = [];
  for (let h = await reader.next(); h !== null; h = await reader.next()) {
    const parts: Buffer[] = [];
    for await (const b of reader.body()) parts.push(Buffer.from(b));
    out.push({ ...h, data: Buffer.concat(parts) });
  }
  return out;
}

/** Rewrites the checksum of the header block at the start of data. */
function rechecksum(data: Buffer): void {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : data[i]!;
  data.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
}

async function packed(build: (p: ReturnType<typeof pack>) => void): Promise<Buffer> {
  const p = pack();
  const parts: Buffer[] = [];
  p.on("data", (c: unknown) => {
    parts.push(c as Buffer);
  });
  const done = new Promise<void>((r) => p.on("end", () => r()));
  build(p);
  p.finalize();
  await done;
  return Buffer.concat(parts);
}

// The reader against real writers (GNU tar, tar-stream) and hand-made edge cases.
test("reads GNU tar's PAX output: long names, hardlinks, symlinks, fifos, devices, binary xattrs", async () => {
  const src = join(dir, "src");
  const long = "d".repeat(120);
  mkdirSync(join(src, long), { recursive: true });
  writeFileSync(join(src, long, "file"), "hello");
  linkSync(join(src, long, "file"), join(src, "hard"));
  symlinkSync(`../${"t".repeat(150)}`, join(src, "sym"));
  execFileSync("mkfifo", [join(src, "fifo")]);
  execFileSync("mknod", [join(src, "null"), "c", "1", "3"]);
  // VFS_CAP_REVISION_2 with the effective flag, CAP_NET_BIND_SERVICE permitted.
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0);
  cap.writeUInt32LE(1 << 10, 4);
  lsetxattr(join(src, "hard"), "security.capability", cap);
  const archive = execFileSync("tar", [
    "--format=pax",
    "--xattrs",
    "--xattrs-include=*",
    "-C",
    src,
    "-cf",
    "-",
    ".",
  ]);
  const byName = new Map((await entries(archive)).map((e) => [e.name.replace(/^\.\//, ""), e]));
  const file = byName.get(`${long}/file`) ?? byName.get("hard");
  assert.ok(file);
  const hardlinked = [...byName.values()].find((e) => e.type === "hardlink");
  assert.ok(hardlinked, "one of the two names is a hardlink entry");
  assert.equal(
    [...byName.values()].find((e) => e.type === "file" && e.data.length > 0)?.data.toString(),
    "hello",
  );
  assert.equal(byName.get("sym")?.type, "symlink");
  assert.equal(byName.get("sym")?.linkname, `../${"t".repeat(150)}`);
  assert.equal(byName.get("fifo")?.type, "fifo");
  assert.deepEqual(
    [byName.get("null")?.type, byName.get("null")?.devmajor, byName.get("null")?.devminor],
    ["char", 1, 3],
  );
  const withCap = [...byName.values()].find((e) => e.xattrs.has("security.capability"));
  assert.deepEqual(withCap?.xattrs.get("security.capability"), cap);
  assert.equal(byName.get(`${long}/`)?.type ?? byName.get(long)?.type, "directory");
});

test("ustar prefix, base-256 numbers, modes with setuid, chunk boundaries anywhere", async () => {
  const name = `${"p".repeat(90)}/${"n".repeat(90)}`;
  const data = await packed((p) => {
    p.entry({ name, mode: 0o4755, uid: 1, gid: 7, mtime: new Date(1_600_000_000_000) }, "x".repeat(1000));
    p.entry({ name: "dir", type: "directory", mode: 0o1777 });
  });
  // A uid too large for octal, in GNU's base-256 form.
  Buffer.from([0x80, 0, 0, 0, 0, 0x20, 0, 0]).copy(data, 108);
  rechecksum(data);
  for (const chunk of [1, 511, 512, 513, 4096]) {
    const [file, d] = await entries(data, chunk);
    assert.equal(file?.name, name);
    assert.equal(file?.mode, 0o4755);
    assert.equal(file?.uid, 0x200000);
    assert.deepEqual(file?.mtime, { sec: 1_600_000_000, nsec: 0 });
    assert.equal(file?.data.length, 1000);
    assert.deepEqual([d?.type, d?.mode], ["directory", 0o1777]);
  }
});

test("unread bodies are skipped", async () => {
  const data = await packed((p) => {
    p.entry({ name: "a" }, Buffer.alloc(3000, 1));
    p.entry({ name: "b" }, Buffer.alloc(10, 2));
  });
  const reader = new TarReader(chunked(data, 100));
  const names: string[] = [];
  for (let h = await reader.next(); h !== null; h = await reader.next()) names.push(h.name);
  assert.deepEqual(names, ["a", "b"]);
});

test("truncated input, a bad checksum and unsupported types are InvalidArgument", async () => {
  const data = await packed((p) => p.entry({ name: "a" }, Buffer.alloc(3000, 1)));
  await assert.rejects(
    entries(data.subarray(0, 1200)),
    (e) => codeOf(e) === Code.InvalidArgument && /truncated/.test(String(e)),
  );
  const bad = Buffer.from(data);
  bad[0] = 0x41;
  await assert.rejects(entries(bad), /checksum/);
  const sparse = Buffer.from(data);
  sparse[156] = "S".charCodeAt(0);
  rechecksum(sparse);
  await assert.rejects(entries(sparse), /unsupported entry type "S"/);
});

test("a GNU tar archive of a real tree reads back byte for byte", async () => {
  const src = join(dir, "tree");
  mkdirSync(join(src, "x/y"), { recursive: true });
  const blob = Buffer.alloc(1 << 20);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) & 0xff;
  writeFileSync(join(src, "x/y/big"), blob);
  const archive = execFileSync("tar", ["-C", src, "-cf", "-", "x"], { maxBuffer: 8 << 20 });
  const big = (await entries(archive, 65536)).find((e) => e.name === "x/y/big");
  assert.deepEqual(big?.data, readFileSync(join(src, "x/y/big")));
});
