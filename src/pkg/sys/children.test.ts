// Subreaper, waitid and pidfds on real processes. This test process becomes a subreaper for the
// orphans perl leaves (perl, unlike a shell, never reaps a child it forked); it waits only for
// those, never for a child that child_process manages.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { after, test } from "node:test";
import {
  childPids,
  ECHILD,
  isChildSubreaper,
  pidfdOpen,
  SysError,
  setChildSubreaper,
  WNOHANG,
  WNOWAIT,
  waitid,
} from "./index.js";

after(() => setChildSubreaper(false));

/** Forks a child that runs perl code, leaves it to this (subreaper) process, returns its pid. */
function orphan(code: string): number {
  return Number(
    execFileSync("perl", [
      "-e",
      `my $p = fork(); if ($p == 0) { open(STDOUT, ">", "/dev/null"); open(STDERR, ">", "/dev/null"); ${code} } print $p`,
    ]),
  );
}

async function until<T>(probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out");
}

test("prctl: the child subreaper flag is set and read back", () => {
  assert.equal(isChildSubreaper(), false);
  setChildSubreaper(true);
  assert.equal(isChildSubreaper(), true);
});

test("waitid: WNOWAIT reports an exit and leaves it waitable; by pidfd it reaps; then ECHILD", async () => {
  setChildSubreaper(true);
  const pid = orphan("select(undef, undef, undef, 0.1); exit 3");
  assert.ok(childPids().includes(pid), "the orphan is adopted by this process's main thread");
  const fd = pidfdOpen(pid);
  try {
    assert.equal(waitid(pid, WNOHANG), undefined, "still running");
    const peek = await until(() => waitid(pid, WNOHANG | WNOWAIT));
    assert.deepEqual(peek, { pid, status: 3, signal: undefined, coreDumped: false });
    assert.deepEqual(waitid({ pidfd: fd }, WNOHANG), peek);
    assert.ok(!childPids().includes(pid), "reaped");
    assert.throws(
      () => waitid(pid, WNOHANG),
      (e) => e instanceof SysError && e.errno === ECHILD && e.message.startsWith(`waitid "pid ${pid}"`),
    );
  } finally {
    closeSync(fd);
  }
});

test("waitid: a process killed by a signal is 128 + signal", async () => {
  setChildSubreaper(true);
  const pid = orphan("kill 'KILL', $$; sleep 5");
  const exit = await until(() => waitid(pid, WNOHANG));
  assert.deepEqual(exit, { pid, status: 137, signal: 9, coreDumped: false });
});

test("WNOHANG|WNOWAIT on a child_process child reports nothing while it runs and takes nothing", async () => {
  const child = spawn("sleep", ["0.1"]);
  const exited = new Promise((r) => child.once("exit", (code) => r(code)));
  assert.equal(waitid(child.pid!, WNOHANG | WNOWAIT), undefined);
  assert.equal(await exited, 0, "Node still gets the exit");
});

test("pidfd_open of a pid that does not exist is ESRCH", () => {
  assert.throws(
    () => pidfdOpen(0x3fffffff),
    (e) => e instanceof SysError && e.code === "ESRCH",
  );
});
