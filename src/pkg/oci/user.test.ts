import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code } from "../errdefs/errdefs.js";
import { defaultSpec } from "./defaults.js";
import { withImageConfig } from "./image-config.js";
import { applyOpts, type SpecOpt } from "./options.js";
import { parseGroup, parsePasswd, withAdditionalGIDs, withAppendAdditionalGroups, withUser } from "./user.js";

const PASSWD = `root:x:0:0:root:/root:/bin/sh
app:x:1000:1001:App:/home/app:/bin/sh

  spaced:x:1200:1200::/:/bin/sh  
bad:x:notanumber:alsobad::/:/bin/sh
short:x:1300
`;
const GROUP = `# a comment
root:x:0:
app:x:1000:app
staff:x:1001:
extra:x:2000:app,other
audio:x:29:other,app
`;

let dir: string;
let rootfs: string; // passwd and group
let bare: string; // neither file
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-oci-user-"));
  rootfs = join(dir, "rootfs");
  bare = join(dir, "bare");
  await mkdir(join(rootfs, "etc"), { recursive: true });
  await mkdir(bare);
  await writeFile(join(rootfs, "etc/passwd"), PASSWD);
  await writeFile(join(rootfs, "etc/group"), GROUP);
});
after(() => rm(dir, { recursive: true, force: true }));

const userOf = async (root: string, ...opts: SpecOpt[]) => {
  const spec = defaultSpec("ns", "c");
  await applyOpts(spec, { rootfs: root }, ...opts);
  return spec.process!.user;
};
const rejectsWith = (p: Promise<unknown>, code: Code, re: RegExp) =>
  assert.rejects(p, (e: { code: Code; message: string }) => e.code === code && re.test(e.message));

test("passwd and group parsing", () => {
  assert.deepEqual(
    parsePasswd(PASSWD).map((u) => [u.name, u.uid, u.gid]),
    [
      ["root", 0, 0],
      ["app", 1000, 1001],
      ["spaced", 1200, 1200],
      ["bad", 0, 0],
      ["short", 1300, 0],
    ],
  );
  assert.deepEqual(
    parseGroup(GROUP).map((g) => [g.name, g.gid, g.members]),
    [
      ["root", 0, []],
      ["app", 1000, ["app"]],
      ["staff", 1001, []],
      ["extra", 2000, ["app", "other"]],
      ["audio", 29, ["other", "app"]],
    ],
  );
});

test("--user forms resolved from the rootfs", async () => {
  assert.deepEqual(await userOf(rootfs, withUser("app")), { uid: 1000, gid: 1001, additionalGids: [1001] });
  assert.deepEqual(await userOf(rootfs, withUser("1000")), { uid: 1000, gid: 1001, additionalGids: [1001] });
  assert.deepEqual(await userOf(rootfs, withUser("spaced")), {
    uid: 1200,
    gid: 1200,
    additionalGids: [1200],
  });
  // A uid without a passwd entry runs with gid 0.
  assert.deepEqual(await userOf(rootfs, withUser("4242")), { uid: 4242, gid: 0, additionalGids: [0] });
  assert.deepEqual(await userOf(rootfs, withUser("app:extra")), {
    uid: 1000,
    gid: 2000,
    additionalGids: [2000],
  });
  assert.deepEqual(await userOf(rootfs, withUser("app:5")), { uid: 1000, gid: 5, additionalGids: [5] });
  assert.deepEqual(await userOf(rootfs, withUser("7:extra")), { uid: 7, gid: 2000, additionalGids: [2000] });
  assert.deepEqual(await userOf(rootfs, withUser("+7:08")), { uid: 7, gid: 8, additionalGids: [8] });
  // Unparsable numbers in passwd read as 0, as containerd's parser does.
  assert.deepEqual(await userOf(rootfs, withUser("bad")), { uid: 0, gid: 0, additionalGids: [0] });

  await rejectsWith(userOf(rootfs, withUser("nobody")), Code.NotFound, /no user "nobody"/);
  await rejectsWith(userOf(rootfs, withUser("app:nogroup")), Code.NotFound, /no group "nogroup"/);
  await rejectsWith(userOf(rootfs, withUser("nobody:5")), Code.NotFound, /no user "nobody"/);
  await rejectsWith(userOf(rootfs, withUser("a:b:c")), Code.InvalidArgument, /invalid USER value "a:b:c"/);
  await rejectsWith(userOf(rootfs, withUser("2147483648")), Code.InvalidArgument, /uid out of range/);
  await rejectsWith(userOf(rootfs, withUser("-1")), Code.InvalidArgument, /uid out of range/);
  await rejectsWith(userOf(rootfs, withUser("1:99999999999")), Code.InvalidArgument, /gid out of range/);
});

test("a rootfs without passwd or group: numeric fallbacks, names are errors", async () => {
  assert.deepEqual(await userOf(bare, withUser("1000")), { uid: 1000, gid: 0, additionalGids: [0] });
  assert.deepEqual(await userOf(bare, withUser("1000:1000")), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000],
  });
  await rejectsWith(userOf(bare, withUser("app")), Code.NotFound, /has no \/etc\/passwd/);
  await rejectsWith(userOf(bare, withUser("5:staff")), Code.NotFound, /has no \/etc\/group/);
  assert.deepEqual(await userOf(bare, withUser("1000"), withAdditionalGIDs("1000")), {
    uid: 1000,
    gid: 0,
    additionalGids: [0],
  });
});

test("uid:gid needs no rootfs; a name needs an absolute one", async () => {
  const spec = defaultSpec("ns", "c"); // root.path "rootfs" (relative), no ctx.rootfs
  await applyOpts(spec, {}, withUser("7:8"));
  assert.deepEqual(spec.process!.user, { uid: 7, gid: 8, additionalGids: [8] });
  await rejectsWith(
    applyOpts(defaultSpec("ns", "c"), {}, withUser("app")),
    Code.InvalidArgument,
    /absolute rootfs/,
  );
  // root.path is used when it is absolute.
  const abs = defaultSpec("ns", "c");
  abs.root = { path: rootfs };
  await applyOpts(abs, {}, withUser("app"));
  assert.equal(abs.process!.user.uid, 1000);
});

test("additional gids: groups listing the user, primary gid first", async () => {
  assert.deepEqual(await userOf(rootfs, withUser("app"), withAdditionalGIDs("app")), {
    uid: 1000,
    gid: 1001,
    additionalGids: [1001, 2000, 29],
  });
  // By uid: the passwd name is looked up; the user's own-named group is not supplementary.
  assert.deepEqual(await userOf(rootfs, withUser("app:app"), withAdditionalGIDs("1000")), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 2000, 29],
  });
  // ctr passes --user whole: "1000:1000" names no one, so only the primary gid remains.
  assert.deepEqual(
    (await userOf(rootfs, withUser("1000:1000"), withAdditionalGIDs("1000:1000"))).additionalGids,
    [1000],
  );
  assert.deepEqual(
    (await userOf(rootfs, withUser("app"), withAppendAdditionalGroups("staff", "77"))).additionalGids,
    [1001, 1001, 77],
  );
  await rejectsWith(
    userOf(rootfs, withAppendAdditionalGroups("missing")),
    Code.NotFound,
    /no group "missing"/,
  );
});

test("image config User, with and without a user", async () => {
  const spec = defaultSpec("ns", "c");
  await applyOpts(spec, { rootfs }, withImageConfig({ User: "app", Cmd: ["sh"] }));
  assert.deepEqual(spec.process!.user, { uid: 1000, gid: 1001, additionalGids: [1001, 2000, 29] });
  const rootSpec = defaultSpec("ns", "c");
  await applyOpts(rootSpec, { rootfs }, withImageConfig({ Cmd: ["sh"] }));
  assert.deepEqual(rootSpec.process!.user, { uid: 0, gid: 0, additionalGids: [0] });
  await rejectsWith(
    applyOpts(defaultSpec("ns", "c"), { rootfs }, withImageConfig({ User: "ghost" })),
    Code.NotFound,
    /ghost/,
  );
});

test("user files are read inside the rootfs: symlinks cannot escape it", async () => {
  // An absolute symlink is resolved from the rootfs, not from the host's /.
  const linked = join(dir, "linked");
  await mkdir(join(linked, "etc"), { recursive: true });
  await mkdir(join(linked, "data"));
  await writeFile(join(linked, "data/passwd"), "linked:x:555:556::/:/bin/sh\n");
  await symlink("/data/passwd", join(linked, "etc/passwd"));
  assert.deepEqual(await userOf(linked, withUser("linked")), { uid: 555, gid: 556, additionalGids: [556] });

  // A relative symlink climbing out stops at the rootfs: the file outside is never read.
  await mkdir(join(dir, "outside"));
  await writeFile(join(dir, "outside/passwd"), "escaped:x:666:666::/:/bin/sh\n");
  const escaping = join(dir, "escaping");
  await mkdir(join(escaping, "etc"), { recursive: true });
  await symlink("../../outside/passwd", join(escaping, "etc/passwd"));
  await rejectsWith(userOf(escaping, withUser("escaped")), Code.NotFound, /has no \/etc\/passwd/);
  assert.deepEqual((await userOf(escaping, withUser("666"))).gid, 0);

  // A symlink loop and a non-regular passwd are errors, not hangs.
  const looping = join(dir, "looping");
  await mkdir(join(looping, "etc"), { recursive: true });
  await symlink("/etc/passwd", join(looping, "etc/passwd"));
  await rejectsWith(
    userOf(looping, withUser("app")),
    Code.InvalidArgument,
    /too many levels of symbolic links/,
  );
  const dirPasswd = join(dir, "dirpasswd");
  await mkdir(join(dirPasswd, "etc/passwd"), { recursive: true });
  await rejectsWith(userOf(dirPasswd, withUser("app")), Code.InvalidArgument, /not a regular file/);
});
