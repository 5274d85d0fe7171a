import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { memoryCgroupOf, oomKillCount } from "./oom.js";

const dir = mkdtempSync(join(tmpdir(), "berth-oom-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("oomKillCount reads a cgroup v2 memory.events file's oom_kill count", () => {
  const file = join(dir, "memory.events");
  writeFileSync(file, "low 0\nhigh 12\nmax 40\noom 3\noom_kill 2\noom_group_kill 0\n");
  assert.equal(oomKillCount(readFileSync(file, "utf8")), 2);
  // oom and oom_group_kill are other counters, not kills of a process.
  writeFileSync(file, "low 0\nhigh 0\nmax 0\noom 1\noom_group_kill 5\n");
  assert.equal(oomKillCount(readFileSync(file, "utf8")), 0);
  writeFileSync(file, "");
  assert.equal(oomKillCount(readFileSync(file, "utf8")), 0);
});

test("memoryCgroupOf finds this process's memory cgroup, a directory with the files to watch", () => {
  const cgroup = memoryCgroupOf(process.pid);
  assert.ok(cgroup, "this host has a memory controller");
  const file = cgroup.version === 1 ? "memory.oom_control" : "memory.events";
  assert.match(
    readFileSync(join(cgroup.path, file), "utf8"),
    cgroup.version === 1 ? /under_oom/ : /oom_kill/,
  );
});
