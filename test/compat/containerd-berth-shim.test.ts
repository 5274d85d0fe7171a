// containerd itself (Debian's package, on a private root, state and socket) running a container
// with `--runtime io.containerd.berth.v2`: it finds containerd-shim-berth-v2 on its PATH,
// starts it through the runtime v2 protocol, connects over ttrpc and asks it to create the
// task. The shim cannot create tasks yet, so the run fails with the shim's own Unimplemented
// answer; then containerd shuts the shim down and nothing is left running.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  DEFAULT_SOCKET_DIR,
  socketAddress,
  socketPath,
} from "../../src/cmd/containerd-shim-berth-v2/address.js";
import { type Containerd, startContainerd } from "../support/containerd.js";
import { buildImage, writeOciArchive } from "../support/images.js";
import { awaitGone, SHIM, stopAll } from "../support/shim.js";

const exec = promisify(execFile);
const IMAGE = "docker.io/library/berth-shim-compat:latest";

describe("containerd runs berth's shim", () => {
  let dir: string;
  let containerd: Containerd;
  const savedPath = process.env["PATH"];
  const ctr = (...args: string[]) =>
    exec("ctr", ["--address", containerd.address, "-n", "shimcompat", ...args], { timeout: 60_000 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-shim-compat-"));
    // containerd looks the shim up on its PATH; node (24, the one running this test) comes first
    // for the shim's #!/usr/bin/env node.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    symlinkSync(SHIM, join(bin, "containerd-shim-berth-v2"));
    process.env["PATH"] = `${dirname(process.execPath)}:${bin}:${savedPath}`;
    containerd = await startContainerd(join(dir, "containerd"));
    const archive = join(dir, "image.tar");
    await writeOciArchive(archive, await buildImage(), { name: IMAGE });
    await ctr("images", "import", archive);
  });
  after(async () => {
    process.env["PATH"] = savedPath;
    if (containerd) await stopAll(containerd.address);
    await containerd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("ctr run --runtime io.containerd.berth.v2 reaches the shim's Task service", async () => {
    await assert.rejects(ctr("run", "--runtime", "io.containerd.berth.v2", IMAGE, "c1", "true"), (err) => {
      const stderr = String((err as { stderr?: string }).stderr);
      // containerd started the shim, connected to the address it printed, and called Create,
      // which the shim refused in its own words.
      assert.match(
        stderr,
        /containerd-shim-berth-v2: containerd\.task\.v2\.Task\/Create is not implemented yet/,
      );
      assert.match(stderr, /not implemented/);
      return true;
    });
    // After the failed create containerd shuts the shim down: no shim process stays, and the
    // shim's socket is gone.
    await awaitGone(containerd.address);
    const socket = socketPath(socketAddress(DEFAULT_SOCKET_DIR, containerd.address, "shimcompat", "c1"));
    assert.ok(!existsSync(socket), `${socket} left behind`);
    // When the shim's connection closed, containerd ran the shim's `delete` in the bundle and,
    // having decoded its DeleteResponse, removed the bundle.
    const bundle = join(dir, "containerd", "state", "io.containerd.runtime.v2.task", "shimcompat", "c1");
    const deadline = Date.now() + 5_000;
    while (existsSync(bundle) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(bundle), "containerd removed the bundle after the shim's delete");
  });
});
