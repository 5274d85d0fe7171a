// The reaper with real processes. Each scenario runs in its own Node process (test/support/
// reaper-probe.ts) that becomes the subreaper, so this test process and the runner keep their
// usual parentage; the probe reports what it saw as JSON.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { removeCgroupParent } from "../../../test/support/bundle.js";

const probe = new URL("../../../test/support/reaper-probe.js", import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), "berth-reaper-test-"));
const cgroupParent = `berth-reaper-test-${process.pid}`;

interface Brief {
  pid: number;
  status: number;
  signal: number | null;
  at: number;
}

// biome-ignore lint/suspicious/noExplicitAny: each scenario reports its own shape.
async function runProbe(scenario: string, ...args: string[]): Promise<any> {
  const { stdout } = await promisify(execFile)(process.execPath, [probe, scenario, ...args], {
    timeout: 30_000,
  });
  const report = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  assert.equal(report.subreaper, true, "the probe was a child subreaper while it ran");
  assert.equal(report.subreaperAfterStop, false, "stop() unsets the subreaper flag");
  assert.deepEqual(report.leftover, [], "the probe has no child left when it ends");
  return report;
}

after(() => {
  // runc removes a container's cgroup on delete; the parent made for it is ours to remove.
  const left = removeCgroupParent(cgroupParent);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(base));
  rmSync(base, { recursive: true, force: true });
  assert.deepEqual(left, [], "container cgroups left behind");
  assert.deepEqual(mounts, [], "mounts left behind");
});

test("child_process keeps the exits of its own children: code 3, SIGKILL, output; none reaped by us", async () => {
  const r = await runProbe("node-child");
  assert.equal(r.sawZombie, true);
  assert.deepEqual(r.passOverZombie, [], "a pass while libuv has yet to reap its child leaves it");
  assert.equal(r.zombieCode, 3);
  assert.equal(r.three.code, 3);
  assert.equal(r.killed.code, null);
  assert.equal(r.killed.signal, "SIGKILL");
  assert.equal(r.hi.code, 0);
  assert.equal(r.hi.out, "hi\n");
  assert.deepEqual(r.reaped, []);
});

test("orphans, single and double fork, are adopted and reaped with their own status", async () => {
  const r = await runProbe("orphans");
  assert.equal(r.single.code, 0, "the shell that left the orphan exits 0 as Node sees it");
  assert.equal(r.double.code, 0);
  assert.deepEqual(r.parents, [r.self, r.self], "both re-parented to the subreaper");
  assert.deepEqual(
    r.exits.map((e: Brief) => [e.pid, e.status, e.signal]),
    [
      [r.pids[0], 5, null],
      [r.pids[1], 6, null],
    ],
  );
});

test("a process killed by SIGKILL reports 137 and the signal", async () => {
  const r = await runProbe("sigkill");
  assert.equal(r.adopted, true);
  assert.equal(r.exit.status, 137);
  assert.equal(r.exit.signal, 9);
});

test("an exit reaped before anyone waits is kept for a later wait; not for a process started after it", async () => {
  const r = await runProbe("wait-after");
  assert.equal(r.reapedBefore, true);
  assert.equal(r.exit.pid, r.pid);
  assert.equal(r.exit.status, 4);
  assert.ok(r.exit.at < r.askedAt, "the exit time is when it was reaped, not when it was asked for");
  assert.deepEqual(r.again, r.exit);
  assert.equal(r.later, "pending");
});

test("a burst of 200 orphans is reaped with exact statuses while child_process runs 50 of its own", async () => {
  const r = await runProbe("burst");
  assert.equal(r.count, 200);
  assert.deepEqual(r.mismatched, []);
  assert.deepEqual(
    r.nodeCodes,
    Array.from({ length: 50 }, (_, i) => i + 100),
  );
  assert.deepEqual(r.zombies, []);
});

test("runc: the container's init (exit 7) and an exec (exit 9) are reaped by us; runc's own exits stay Node's", async () => {
  const r = await runProbe("runc", base, cgroupParent);
  assert.equal(r.initParent, r.self, "init is adopted once runc create exits");
  assert.equal(r.initExit.pid, r.init);
  assert.equal(r.initExit.status, 7);
  assert.equal(r.execExit.status, 9);
  assert.equal(r.state, "stopped");
  // Every runc command returned (a stolen exit would have hung the probe); only these two were ours.
  assert.deepEqual(r.reaped.map((e: Brief) => e.pid).sort(), [r.init, r.execExit.pid].sort());
  assert.deepEqual(r.zombies, []);
});
