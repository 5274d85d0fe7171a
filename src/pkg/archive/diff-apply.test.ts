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
import { buildLower, buildTrees, changeTree, describeTree } from "./diff-fixtures.js";

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

  test("a diff read from an overlay upper dir, applied onto a copy of lower, gives the merged tree", async () => {
    const dirs = join(base, "from-overlay");
    const ovlLower = buildLower(join(dirs, "lower"));
    for (const d of ["upper", "work"]) mkdirSync(join(dirs, d), { recursive: true });
    const mounts = [
      {
        type: "overlay",
        source: "overlay",
        target: "",
        options: [`lowerdir=${ovlLower}`, `upperdir=${join(dirs, "upper")}`, `workdir=${join(dirs, "work")}`],
      },
    ];
    const want = await withTempMount(mounts, async (merged) => {
      changeTree(merged);
      return describeTree(merged, { mtimes: true, nlinks: false });
    });
    const applied = join(dirs, "applied");
    execFileSync("cp", ["-a", ovlLower, applied]);
    await applyTar(applied, diffTar(ovlLower, join(dirs, "upper"), { overlayUpper: true }), {
      whiteouts: "deletion",
    });
    assert.deepEqual(describeTree(applied, { mtimes: true, nlinks: false }), want);
  });
});
