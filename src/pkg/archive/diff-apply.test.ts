// The diff writer against the tar applier: a layer made from two real trees, applied onto a
// copy of the lower one (whiteouts as deletions) or into an overlay upper directory (overlay
// whiteouts), reproduces the upper tree file by file.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { withTempMount } from "../../core/mount/mount.js";
import { applyTar } from "./apply.js";
import { diffTar } from "./diff.js";
import { buildTrees, describeTree } from "./diff-fixtures.js";

const base = mkdtempSync(join(tmpdir(), "berth-diff-apply-test-"));
after(() => rmSync(base, { recursive: true, force: true }));

describe("a diff applied reproduces the upper tree", () => {
  const { lower, upper } = buildTrees(join(base, "trees"));
  const expected = describeTree(upper, { mtimes: true });

  test("onto a copy of lower, whiteouts as deletions", async () => {
    const applied = join(base, "applied");
    execFileSync("cp", ["-a", lower, applied]);
    await applyTar(applied, diffTar(lower, upper), { whiteouts: "deletion" });
    assert.deepEqual(describeTree(applied, { mtimes: true }), expected);
  });

  test("into an overlay upper directory over lower, with overlay whiteouts", async () => {
    const dirs = join(base, "overlay");
    for (const d of ["upper", "work"]) mkdirSync(join(dirs, d), { recursive: true });
    await applyTar(join(dirs, "upper"), diffTar(lower, upper), { whiteouts: "overlay" });
    const mounts = [
      {
        type: "overlay",
        source: "overlay",
        target: "",
        options: [`lowerdir=${lower}`, `upperdir=${join(dirs, "upper")}`, `workdir=${join(dirs, "work")}`],
      },
    ];
    const merged = await withTempMount(mounts, async (root) => describeTree(root, { mtimes: true }));
    assert.deepEqual(merged, expected);
  });
});
