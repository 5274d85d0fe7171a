// The options of berthctl run, seen from inside real containers (berthd, runc's shim, runc, a
// busybox image): --mount, --net-host, --privileged, --memory-limit, --cpus, --read-only,
// --user, --cwd, --env. One daemon for the file; each container is run --rm.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { berthctlFor } from "./support/berthctl.js";
import { BERTHCTL, type Daemon, GC_ON_DEMAND_CONFIG, startBerthd } from "./support/daemon.js";
import { runnableImage, writeOciArchive } from "./support/images.js";

const exec = promisify(execFile);
const NS = "runoptions";
/** This host's cgroup v1 hierarchies (containerd's default cgroup path is /<namespace>/<id>). */
const CGROUP_V1 = "/sys/fs/cgroup";
const IMAGE = "docker.io/library/bb:run-options";

/** The mount points runc cannot make in a read-only root (real images have them). */
const MOUNT_POINTS = ["proc/", "sys/", "dev/", "run/"].map((name) => ({ name, type: "directory" as const }));

/** The CapEff line of /proc/<pid>/status. */
const capEff = (status: string) => /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];

describe("berthctl run options inside the container", () => {
  let d: Daemon;
  let n = 0;
  /** `berthctl run --rm [options] IMAGE <new id> sh -c script`: its exit code and output. */
  const run = (options: string[], script: string) =>
    berthctlFor(() => d, NS).ended(["run", "--rm", ...options, IMAGE, `o${++n}`, "sh", "-c", script]);
  /**
   * Runs a container that waits for its stdin to end, calls check(id) on the host while it runs,
   * then ends its stdin; check's result once the run has succeeded.
   */
  const whileRunning = <T>(options: string[], check: (id: string) => T) =>
    new Promise<T>((resolve, reject) => {
      const id = `o${++n}`;
      const args = ["--address", d.address, "-n", NS, "run", "--rm", ...options, IMAGE, id];
      const p = spawn(process.execPath, [BERTHCTL, ...args, "sh", "-c", "echo ready; read x || true"], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let result: { value: T } | { error: unknown } | undefined;
      let stderr = "";
      p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      p.stdout.once("data", () => {
        try {
          result = { value: check(id) };
        } catch (error) {
          result = { error };
        }
        p.stdin.end();
      });
      const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
      p.on("error", reject);
      p.on("close", (code) => {
        clearTimeout(timer);
        if (code !== 0 || !result) reject(new Error(`run exited with ${code}: ${stderr}`));
        else if ("error" in result) reject(result.error);
        else resolve(result.value);
      });
    });
  /** Runs script and returns its stdout, asserting it succeeded. */
  const output = async (options: string[], script: string) => {
    const r = await run(options, script);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    d = await startBerthd({ config: GC_ON_DEMAND_CONFIG });
    await writeOciArchive(join(d.dir, "bb.tar"), await runnableImage(MOUNT_POINTS), { name: IMAGE });
    await exec(process.execPath, [
      BERTHCTL,
      "--address",
      d.address,
      "-n",
      NS,
      "images",
      "import",
      join(d.dir, "bb.tar"),
    ]);
  });
  after(async () => {
    await d.stop();
    d.cleanup();
  });

  test("--mount binds a host directory: the container reads its file, and ro is read-only", async () => {
    const host = mkdtempSync(join(tmpdir(), "berth-bind-"));
    try {
      writeFileSync(join(host, "greeting"), "from the host\n");
      const out = await output(
        ["--mount", `type=bind,src=${host},dst=/mnt/h,options=rbind:ro`],
        "cat /mnt/h/greeting; touch /mnt/h/new 2>/dev/null && echo writable || echo read-only",
      );
      assert.equal(out, "from the host\nread-only\n");
      const rw = await output(
        ["--mount", `type=bind,src=${host},dst=/mnt/h,options=rbind:rw`],
        "echo hi > /mnt/h/new",
      );
      assert.equal(rw, "");
      assert.equal(readFileSync(join(host, "new"), "utf8"), "hi\n");
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  test("--net-host shares the host's network namespace; without it the container has its own", async () => {
    const hostNet = readlinkSync("/proc/self/ns/net");
    assert.equal(await output(["--net-host"], "readlink /proc/self/ns/net"), `${hostNet}\n`);
    assert.notEqual(await output([], "readlink /proc/self/ns/net"), `${hostNet}\n`);
  });

  test("--privileged gives every capability berthd has and the host's devices", async () => {
    const hostCaps = capEff(readFileSync("/proc/self/status", "utf8"));
    const privileged = await output(["--privileged"], "grep CapEff /proc/self/status; ls /dev");
    assert.equal(capEff(privileged), hostCaps);
    // A device the default set does not give: the host's loop-control or a disk-like device.
    const hostOnly = ["loop-control", "kmsg", "mem"].filter((dev) =>
      new RegExp(`^${dev}$`, "m").test(privileged),
    );
    assert.ok(hostOnly.length > 0, privileged);
    const plain = await output([], "grep CapEff /proc/self/status; ls /dev");
    assert.notEqual(capEff(plain), hostCaps);
    for (const dev of hostOnly) assert.doesNotMatch(plain, new RegExp(`^${dev}$`, "m"));
  });

  test("--memory-limit is the limit of the container's memory cgroup, as the host sees it", async () => {
    // containerd's default spec mounts no cgroupfs in the container: the host's view is read.
    const limit = await whileRunning(["--memory-limit", "33554432"], (id) =>
      readFileSync(join(CGROUP_V1, "memory", NS, id, "memory.limit_in_bytes"), "utf8"),
    );
    assert.equal(limit, "33554432\n");
  });

  test("--cpus sets the CFS quota over the period", async () => {
    const [quota, period] = await whileRunning(["--cpus", "0.5"], (id) =>
      ["cpu.cfs_quota_us", "cpu.cfs_period_us"].map((f) =>
        Number(readFileSync(join(CGROUP_V1, "cpu", NS, id, f), "utf8")),
      ),
    );
    assert.ok(period! > 0);
    assert.equal(quota! / period!, 0.5);
  });

  test("--read-only: writing to / fails; without it, it succeeds", async () => {
    const ro = await run(["--read-only"], "touch /x");
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    assert.equal((await run([], "touch /x")).code, 0);
  });

  test("--seccomp confines the process with a seccomp filter; without it there is none", async () => {
    assert.equal(await output(["--seccomp"], "grep Seccomp: /proc/self/status"), "Seccomp:\t2\n");
    assert.equal(await output([], "grep Seccomp: /proc/self/status"), "Seccomp:\t0\n");
  });

  test("--user, --cwd and --env together", async () => {
    const out = await output(
      ["--user", "1234:4321", "--cwd", "/tmp", "--env", "GREETING=hello world", "--env", "PATH=/bin"],
      'echo "$GREETING"; echo $PATH; pwd; id -u; id -g',
    );
    assert.equal(out, "hello world\n/bin\n/tmp\n1234\n4321\n");
  });
});
