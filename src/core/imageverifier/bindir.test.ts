// The bindir verifier with real verifier executables (shell scripts): the arguments and stdin
// containerd gives them, judgements combined with AND in name order, max_verifiers, the
// per-verifier timeout killing the verifier's whole process group, bounded output, a missing or
// empty directory, an entry that cannot be executed, and the transfer's messages (verifyPull).
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { codeOf } from "../../pkg/errdefs/errdefs.js";
import type { OciDescriptor } from "../images/manifest.js";
import { BinDirVerifier, descriptorJson, STDIN_MEDIA_TYPE } from "./bindir.js";
import { OUTPUT_LIMIT_BYTES } from "./run.js";
import { verifyPull } from "./verifier.js";

const NAME = "registry.example.com/image:abc";
const DESC: OciDescriptor = {
  mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
  digest: "sha256:98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4",
  size: 2048,
  annotations: { b: "2", a: "<&>" },
};

const scratch = mkdtempSync(join(tmpdir(), "berth-verifiers-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
/** A directory holding the given shell scripts (name → body), executable unless mode says. */
function binDir(scripts: Record<string, string>, mode = 0o755): string {
  const d = mkdtempSync(join(scratch, "bin-"));
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(d, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(d, name), mode);
  }
  return d;
}

const verifier = (dir: string, maxVerifiers = -1, perVerifierTimeoutMs = 5000) =>
  new BinDirVerifier({ binDir: dir, maxVerifiers, perVerifierTimeoutMs });

/** For assert.rejects: the error's message matches re. */
const message = (re: RegExp) => (err: unknown) => {
  assert.match((err as Error).message, re);
  return true;
};

const accept = (reason: string) => `echo "${reason}"`;
const reject = (reason: string, code = 1) => `echo "${reason}"; exit ${code}`;

/** Whether pid is gone (or a zombie nobody has reaped yet: it runs nothing). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

describe("bindir image verifier", () => {
  test("a verifier gets containerd's arguments and the descriptor as JSON on stdin", async () => {
    const out = join(scratch, "io");
    const dir = binDir({
      "verifier-0": `printf '%s\\n' "$@" > ${out}.args; cat > ${out}.stdin; printf 'Reason A line 1\\nReason A line 2\\n\\n'`,
    });
    const j = await verifier(dir).verifyImage(NAME, DESC);
    assert.deepEqual(j, { ok: true, reason: "verifier-0 => Reason A line 1\nReason A line 2" });
    assert.deepEqual(readFileSync(`${out}.args`, "utf8").split("\n").slice(0, -1), [
      "-name",
      NAME,
      "-digest",
      DESC.digest,
      "-stdin-media-type",
      "application/vnd.oci.descriptor.v1+json",
    ]);
    assert.equal(
      readFileSync(`${out}.stdin`, "utf8"),
      `{"mediaType":"${DESC.mediaType}","digest":"${DESC.digest}","size":2048,` +
        `"annotations":{"a":"\\u003c\\u0026\\u003e","b":"2"}}\n`,
    );
    assert.equal(STDIN_MEDIA_TYPE, "application/vnd.oci.descriptor.v1+json");
  });

  test("stdin is encoded as Go encodes an OCI descriptor", () => {
    assert.equal(
      descriptorJson({ mediaType: "", digest: "", size: 0, annotations: {} }),
      `{"mediaType":"","digest":"","size":0}\n`,
    );
    assert.equal(
      descriptorJson({
        mediaType: "m",
        digest: "d",
        size: 1,
        annotations: {},
        urls: ["u"],
        platform: { os: "linux", architecture: "arm", variant: "v7", osFeatures: [] },
        artifactType: "t",
      }),
      `{"mediaType":"m","digest":"d","size":1,"urls":["u"],` +
        `"platform":{"architecture":"arm","os":"linux","variant":"v7"},"artifactType":"t"}\n`,
    );
  });

  test("every verifier must accept; the reasons are joined in name order", async () => {
    const dir = binDir({ b: accept("Reason B"), a: accept("Reason A"), c: accept("Reason C") });
    assert.deepEqual(await verifier(dir).verifyImage(NAME, DESC), {
      ok: true,
      reason: "a => Reason A, b => Reason B, c => Reason C",
    });
  });

  test("the first denial decides, with the verifier's name, exit code and reason", async () => {
    const marker = join(scratch, "after-denial");
    const dir = binDir({ a: accept("Reason A"), b: reject("Reason D", 3), c: `touch ${marker}` });
    assert.deepEqual(await verifier(dir).verifyImage(NAME, DESC), {
      ok: false,
      reason: "verifier b rejected image (exit code 3): Reason D",
    });
    assert.equal(existsSync(marker), false, "no verifier runs after a denial");
  });

  test("max_verifiers: only the first n entries by name run; negative runs all", async () => {
    const dir = binDir({ a: accept("A"), b: accept("B"), c: reject("D") });
    assert.deepEqual(await verifier(dir, 0).verifyImage(NAME, DESC), { ok: true, reason: "" });
    assert.deepEqual(await verifier(dir, 2).verifyImage(NAME, DESC), { ok: true, reason: "a => A, b => B" });
    assert.equal((await verifier(dir, 3).verifyImage(NAME, DESC)).ok, false);
    assert.equal((await verifier(dir, -1).verifyImage(NAME, DESC)).ok, false);
  });

  test("a missing or empty directory allows the pull", async () => {
    const missing = join(scratch, "missing");
    assert.deepEqual(await verifier(missing).verifyImage(NAME, DESC), {
      ok: true,
      reason: `image verifier directory ${missing} does not exist`,
    });
    const empty = binDir({});
    assert.deepEqual(await verifier(empty).verifyImage(NAME, DESC), {
      ok: true,
      reason: `no image verifier binaries found in ${empty}`,
    });
  });

  test("bin_dir that is not a directory is an error", async () => {
    const file = join(scratch, "a-file");
    writeFileSync(file, "");
    await assert.rejects(
      verifier(file).verifyImage(NAME, DESC),
      /failed to list directory contents: .*ENOTDIR/,
    );
  });

  test("an entry that cannot be executed is an error, not a judgement", async () => {
    const dir = binDir({ a: accept("A") }, 0o644);
    await assert.rejects(
      verifier(dir).verifyImage(NAME, DESC),
      message(/^failed to call verifier a \(runtime [\d.]+m?s\): starting process: spawn .*\/a EACCES$/),
    );
  });

  test("a verifier past the timeout is an error, and its whole process group is killed", async () => {
    const pids = join(scratch, "slow.pids");
    // The verifier waits on a child that would sleep far longer than the timeout.
    const dir = binDir({ a: accept("A"), slow: `sleep 60 & echo $$ $! > ${pids}; wait` });
    const started = Date.now();
    await assert.rejects(
      verifier(dir, -1, 300).verifyImage(NAME, DESC),
      message(
        /^failed to call verifier slow \(runtime [\d.]+m?s\): did not finish within the per-verifier timeout of 300ms: killed$/,
      ),
    );
    assert.ok(Date.now() - started < 3000, "the timeout stops the run");
    const [shell, child] = readFileSync(pids, "utf8").trim().split(" ").map(Number);
    for (let i = 0; i < 50 && !(gone(shell!) && gone(child!)); i++) await sleep(20);
    assert.ok(gone(shell!), "the verifier is killed");
    assert.ok(gone(child!), "the verifier's child is killed");
  });

  test("output past the limit is truncated, and a verifier writing a lot is not blocked", async () => {
    const big = OUTPUT_LIMIT_BYTES * 4;
    const dir = binDir({
      a: `head -c ${big} /dev/zero | tr '\\0' x`,
      b: `head -c ${big} /dev/zero | tr '\\0' y >&2; echo small`,
    });
    const j = await verifier(dir).verifyImage(NAME, DESC);
    assert.equal(j.ok, true);
    assert.equal(j.reason, `a => ${"x".repeat(OUTPUT_LIMIT_BYTES)}(stdout truncated), b => small`);
  });

  test("a verifier that does not read a descriptor larger than a pipe buffer still judges", async () => {
    const dir = binDir({ a: accept("A") });
    const large = { ...DESC, annotations: { large_payload: "0".repeat(2 * 64 * 1024) } };
    assert.deepEqual(await verifier(dir).verifyImage(NAME, large), { ok: true, reason: "a => A" });
  });

  test("a verifier killed by a signal is an error", async () => {
    const dir = binDir({ a: "kill -TERM $$" });
    await assert.rejects(
      verifier(dir).verifyImage(NAME, DESC),
      /waiting on command to exit: signal: SIGTERM$/,
    );
  });

  test("aborting stops the verifier and rejects with the abort's reason", async () => {
    const pidFile = join(scratch, "aborted.pid");
    const dir = binDir({ a: `echo $$ > ${pidFile}; exec sleep 60` });
    const controller = new AbortController();
    const judging = verifier(dir).verifyImage(NAME, DESC, controller.signal);
    while (!existsSync(pidFile) || readFileSync(pidFile, "utf8") === "") await sleep(10);
    const reason = new Error("pull cancelled");
    controller.abort(reason);
    await assert.rejects(judging, (err) => err === reason);
    const pid = Number(readFileSync(pidFile, "utf8"));
    for (let i = 0; i < 50 && !gone(pid); i++) await sleep(20);
    assert.ok(gone(pid));
  });

  test("verifyPull: containerd's messages for a denial and for a verifier that fails", async () => {
    const none = new Map();
    await verifyPull(none, NAME, DESC);
    const denying = new Map([["bindir", verifier(binDir({ a: reject("not signed") }))]]);
    await assert.rejects(verifyPull(denying, NAME, DESC), (err: Error) => {
      assert.equal(
        err.message,
        `image verifier bindir blocked pull of ${NAME} with digest ${DESC.digest} for reason: ` +
          "verifier a rejected image (exit code 1): not signed",
      );
      assert.equal(codeOf(err), 2, "Unknown, as containerd's");
      return true;
    });
    const failing = new Map([["bindir", verifier(binDir({ a: accept("A") }, 0o600))]]);
    await assert.rejects(
      verifyPull(failing, NAME, DESC),
      message(
        new RegExp(
          `^blocking pull of ${NAME} with digest ${DESC.digest}: image verifier bindir returned error: ` +
            "failed to call verifier a .*EACCES$",
        ),
      ),
    );
    const accepting = new Map([["bindir", verifier(binDir({ a: accept("A") }))]]);
    await verifyPull(accepting, NAME, DESC);
  });
});
