import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  lgetxattr,
  llistxattr,
  lremovexattr,
  lsetxattr,
  lutimes,
  makedev,
  mknod,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  SysError,
  umount2,
  XATTR_CREATE,
} from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "berth-sys-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("makedev encodes as glibc does", () => {
  assert.equal(makedev(1, 3), 0x103n);
  // minor's low 8 bits, major's low 12 bits at 8, minor's high bits at 20, major's high bits at 44.
  assert.equal(makedev(8, 0x12345), 0x45n | (8n << 8n) | (0x123n << 20n));
  assert.equal(makedev(0x1234, 0x56), 0x56n | (0x234n << 8n) | (0x1n << 44n));
});

test("mknod makes char and block devices and fifos with their numbers", () => {
  mknod(join(dir, "null"), S_IFCHR | 0o666, makedev(1, 3));
  mknod(join(dir, "blk"), S_IFBLK | 0o600, makedev(7, 300));
  mknod(join(dir, "fifo"), S_IFIFO | 0o640);
  const c = lstatSync(join(dir, "null"));
  assert.ok(c.isCharacterDevice());
  assert.equal(c.rdev, 0x103);
  const b = lstatSync(join(dir, "blk"));
  assert.ok(b.isBlockDevice());
  assert.equal(b.rdev, Number(makedev(7, 300)));
  assert.equal(b.mode & 0o7777, 0o600);
  assert.ok(lstatSync(join(dir, "fifo")).isFIFO());
  assert.throws(
    () => mknod(join(dir, "null"), S_IFCHR, 0),
    (e) => {
      assert.ok(e instanceof SysError);
      assert.equal(e.code, "EEXIST");
      assert.equal(e.path, join(dir, "null"));
      assert.match(e.message, /^mknod ".*null": EEXIST: file already exists$/);
      return true;
    },
  );
});

test("xattrs: binary values round-trip, list, remove, missing is undefined; symlinks are not followed", () => {
  const f = join(dir, "file");
  writeFileSync(f, "");
  const cap = Buffer.from([
    0x01, 0x00, 0x00, 0x02, 0x80, 0xff, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  ]);
  lsetxattr(f, "security.capability", cap);
  lsetxattr(f, "user.text", "v");
  assert.deepEqual(lgetxattr(f, "security.capability"), cap);
  assert.deepEqual(llistxattr(f).sort(), ["security.capability", "user.text"]);
  assert.equal(lgetxattr(f, "user.none"), undefined);
  assert.throws(() => lsetxattr(f, "user.text", "w", XATTR_CREATE), { code: "EEXIST", syscall: "lsetxattr" });
  lremovexattr(f, "user.text");
  assert.deepEqual(llistxattr(f), ["security.capability"]);
  const link = join(dir, "link");
  symlinkSync(f, link);
  assert.deepEqual(llistxattr(link), []);
  lsetxattr(link, "trusted.x", "on-the-link");
  assert.equal(lgetxattr(f, "trusted.x"), undefined);
  assert.equal(lgetxattr(link, "trusted.x")?.toString(), "on-the-link");
  assert.throws(() => llistxattr(join(dir, "missing")), /llistxattr ".*missing": ENOENT/);
});

test("umount2 of something not mounted is EINVAL, with the path", () => {
  assert.throws(
    () => umount2(dir),
    (e) => e instanceof SysError && e.code === "EINVAL" && e.path === dir,
  );
});

test("lutimes sets nanosecond times on a symlink itself, not on its target", () => {
  const target = join(dir, "t-target");
  writeFileSync(target, "");
  const link = join(dir, "t-link");
  symlinkSync(target, link);
  lutimes(link, { sec: 1000, nsec: 5 }, { sec: 1_700_000_000, nsec: 123_456_789 });
  const st = lstatSync(link, { bigint: true });
  assert.equal(st.mtimeNs, 1_700_000_000_123_456_789n);
  assert.equal(st.atimeNs, 1000_000_000_005n);
  assert.notEqual(lstatSync(target, { bigint: true }).mtimeNs, st.mtimeNs);
  assert.throws(
    () => lutimes(join(dir, "none"), { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 }),
    /utimensat ".*none": ENOENT/,
  );
});

test("importing the syscall modules does not load koffi; the first call does", () => {
  const index = new URL("./index.js", import.meta.url).href;
  const script = `
    import { createRequire } from "node:module";
    const require = createRequire(import.meta.url);
    const loaded = () => Object.keys(require.cache).some((k) => k.includes("/koffi/"));
    const sys = await import(${JSON.stringify(index)});
    const before = loaded();
    sys.makedev(1, 1);
    const afterPure = loaded();
    try { sys.umount2("/nonexistent-berth"); } catch {}
    console.log(JSON.stringify([before, afterPure, loaded()]));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.deepEqual(JSON.parse(out), [false, false, true]);
});

test("SysError names errnos libuv has no name for (ECHILD), and a number for unknown ones", () => {
  assert.equal(new SysError("waitid", 10).code, "ECHILD");
  assert.equal(new SysError("open", 2, "/x").code, "ENOENT");
  assert.equal(new SysError("x", 200).code, "errno 200");
});
