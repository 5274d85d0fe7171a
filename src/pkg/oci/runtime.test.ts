// The generated spec runs: a busybox rootfs under Debian's runc and crun, with the image
// config, --user, --env and --cwd applied and the default seccomp profile installed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, rm, rmdir, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { defaultSpec } from "./defaults.js";
import { withDefaultUnixDevices } from "./devices.js";
import { withImageConfig } from "./image-config.js";
import {
  applyOpts,
  type SpecOpt,
  withEnv,
  withProcessArgs,
  withProcessCwd,
  withRootFSPath,
} from "./options.js";
import { withPrivilegedRun } from "./privileged.js";
import { withDefaultSeccomp } from "./seccomp.js";
import { withUser } from "./user.js";
import { specToJSON } from "./validate.js";

const run = promisify(execFile);
const NAMESPACE = `berth-oci-test-${process.pid}`;
const APPLETS = ["sh", "id", "echo", "pwd", "cat", "grep", "true"];

let dir: string;
let rootfs: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-oci-run-"));
  rootfs = join(dir, "rootfs");
  for (const d of ["bin", "etc", "tmp", "work", "proc", "dev", "sys", "run"])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile("/bin/busybox", join(rootfs, "bin/busybox"));
  for (const applet of APPLETS) await symlink("busybox", join(rootfs, "bin", applet));
  await writeFile(
    join(rootfs, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/work:/bin/sh\n",
  );
  await writeFile(
    join(rootfs, "etc/group"),
    "root:x:0:\nstaff:x:1001:\naudio:x:29:app\nextra:x:2000:other,app\n",
  );
});
after(async () => {
  // The namespace's cgroup: one directory on cgroup v2, one per hierarchy on v1 or hybrid hosts.
  await rmdir(`/sys/fs/cgroup/${NAMESPACE}`).catch(() => {});
  for (const h of await readdir("/sys/fs/cgroup").catch(() => []))
    await rmdir(`/sys/fs/cgroup/${h}/${NAMESPACE}`).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

/**
 * The command running `runtime` with `args`. crun 1.8 refuses any container on a hybrid cgroup
 * host (this one: v1 controllers plus a cgroup2 hierarchy offering hugetlb), whatever the spec;
 * there it runs in a private mount namespace that sees only cgroup2, without managing cgroups.
 */
async function runtimeCommand(runtime: string, args: string[]): Promise<[string, string[]]> {
  const hybrid = await stat("/sys/fs/cgroup/unified").then(
    () => true,
    () => false,
  );
  if (runtime !== "crun" || !hybrid) return [runtime, args];
  const script = 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"';
  return [
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      "crun",
      "--cgroup-manager=disabled",
      ...args,
    ],
  ];
}

/** Runs a container of `opts` under `runtime` in the foreground; its stdout. */
async function runContainer(runtime: string, id: string, ...opts: SpecOpt[]): Promise<string> {
  const bundle = join(dir, `${runtime}-${id}`);
  await mkdir(bundle);
  const spec = await applyOpts(
    defaultSpec(NAMESPACE, id),
    { rootfs },
    withRootFSPath(rootfs),
    withDefaultUnixDevices,
    ...opts,
  );
  await writeFile(join(bundle, "config.json"), specToJSON(spec));
  const global = ["--root", join(dir, `${runtime}-state`)];
  try {
    const { stdout } = await run(
      ...(await runtimeCommand(runtime, [...global, "run", "--bundle", bundle, id])),
      {
        timeout: 20_000,
      },
    );
    return stdout;
  } finally {
    await run(...(await runtimeCommand(runtime, [...global, "delete", "--force", id]))).catch(() => {});
  }
}

const appOpts = (): SpecOpt[] => [
  withEnv(["FOO=from-cli"]),
  withImageConfig({ Env: ["PATH=/bin", "FOO=from-image"], Cmd: ["sh"], WorkingDir: "/work", User: "app" }),
  withProcessArgs(
    "sh",
    "-c",
    "id; echo $FOO; pwd; grep Seccomp: /proc/self/status; [ -c /proc/keys ] && echo keys masked",
  ),
  withProcessCwd("/tmp"),
  withDefaultSeccomp(),
];

for (const runtime of ["runc", "crun"]) {
  test(`${runtime} runs the spec: user and groups, env, cwd, seccomp`, async () => {
    const out = await runContainer(runtime, `app-${runtime}`, ...appOpts());
    assert.equal(
      out,
      "uid=1000(app) gid=1001(staff) groups=29(audio),1001(staff),2000(extra)\nfrom-cli\n/tmp\nSeccomp:\t2\nkeys masked\n",
    );
  });

  test(`${runtime} runs a spec with --user uid:gid and --privileged`, async () => {
    const out = await runContainer(
      runtime,
      `priv-${runtime}`,
      withImageConfig({ Cmd: ["sh"] }),
      withUser("4242:4343"),
      withPrivilegedRun(),
      withProcessArgs(
        "sh",
        "-c",
        "id; grep Seccomp: /proc/self/status; [ -f /proc/keys ] && echo keys visible; echo $PATH",
      ),
    );
    assert.equal(
      out,
      "uid=4242 gid=4343 groups=4343\nSeccomp:\t0\nkeys visible\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    );
  });
}
