// Same result as containerd: the same multi-layer image (hardlinks, symlinks, whiteouts, an
// opaque directory, setuid, xattrs, a device node, a fifo, owners) imported and unpacked by
// containerd (Debian's package, on a private root, state and socket) and by berthd, both
// mounted read-only, and the two trees compared file by file.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Containerd, startContainerd } from "./support/containerd.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { buildImage, type LayerCompression, writeDockerArchive, writeOciArchive } from "./support/images.js";
import { compareTrees, describeTree } from "./support/images-tree.js";

const exec = promisify(execFile);

describe("unpack compared with containerd", () => {
  let dir: string;
  let d: Daemon;
  let containerd: Containerd;
  const ctr = async (...args: string[]) =>
    (await exec("ctr", ["--address", containerd.address, "-n", "cmp", ...args], { timeout: 120_000 })).stdout;
  const ctl = async (...args: string[]) =>
    (
      await exec(process.execPath, [BERTHCTL, "--address", d.address, "-n", "cmp", ...args], {
        timeout: 120_000,
      })
    ).stdout;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-cmp-"));
    containerd = await startContainerd(join(dir, "containerd"));
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await containerd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: { kind: "oci" | "docker"; compression: LayerCompression }[] = [
    { kind: "oci", compression: "gzip" },
    { kind: "docker", compression: "zstd" },
  ];
  for (const { kind, compression } of cases) {
    test(`${kind} archive, ${compression} layers: the same tree file by file`, async () => {
      const image = await buildImage({ compression });
      const archive = join(dir, `${kind}-${compression}.tar`);
      const name = `docker.io/library/cmp:${kind}-${compression}`;
      if (kind === "oci") await writeOciArchive(archive, image, { name });
      else await writeDockerArchive(archive, image, [`cmp:${kind}-${compression}`]);

      await ctr("images", "import", archive);
      await ctl("images", "import", archive);

      const theirs = join(dir, `containerd-${kind}`);
      const ours = join(dir, `berthd-${kind}`);
      mkdirSync(theirs);
      mkdirSync(ours);
      await ctr("images", "mount", name, theirs);
      try {
        await ctl("images", "mount", name, ours);
        try {
          const a = describeTree(theirs);
          const b = describeTree(ours);
          assert.ok(
            a.get("bin/busybox")?.type === "file" && a.get("dev/null")?.type === "char",
            "containerd's tree is the image",
          );
          assert.ok(a.size > 20);
          assert.deepEqual(compareTrees(a, b, ["containerd", "berthd"]), []);
        } finally {
          await ctl("images", "unmount", ours);
        }
      } finally {
        await ctr("images", "unmount", "--rm", theirs);
      }
    });
  }
});
