// Image verifiers in a real berthd (the io.containerd.image-verifier.v1.bindir plugin, configured
// with a bin_dir of shell-script verifiers) judging `berthctl images pull --plain-http` from a
// real registry: a denying verifier refuses the pull with its reason and nothing is left (no
// image, no content, no lease); an accepting one lets it through and gets containerd's
// arguments and the root descriptor on stdin; a verifier configuration that does not load
// refuses pulls rather than letting them through unverified.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Content } from "../src/api/services/content/v1/content_pb.js";
import { Leases } from "../src/api/services/leases/v1/leases_pb.js";
import { Resolver } from "../src/core/remotes/resolver.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";
import { type BuiltImage, buildImage } from "./support/images.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const exec = promisify(execFile);

const verifierConfig = (binDir: string, timeout = "10s") => `version = 3
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "${binDir}"
  max_verifiers = 10
  per_verifier_timeout = "${timeout}"
`;

describe("image verifiers judge pulls", () => {
  let d: Daemon;
  let registry: TestRegistry;
  let image: BuiltImage;
  let ref: string;
  let scratch: string;
  let binDir: string;

  const ctl = (daemon: Daemon, ...args: string[]) =>
    exec(process.execPath, [BERTHCTL, "--address", daemon.address, ...args], { timeout: 60_000 });

  /** Makes the verifiers in bin_dir exactly these shell scripts. */
  function verifiers(scripts: Record<string, string>) {
    rmSync(binDir, { recursive: true, force: true });
    mkdirSync(binDir);
    for (const [name, body] of Object.entries(scripts)) {
      writeFileSync(join(binDir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(binDir, name), 0o755);
    }
  }

  before(async () => {
    registry = await startRegistry("http");
    image = await buildImage({ compression: "gzip" });
    ref = `${registry.host}/verified/app:v1`;
    const resolver = new Resolver({ plainHttp: true });
    try {
      await pushImage(await resolver.pusher(ref), image, "v1");
    } finally {
      await resolver.close();
    }
    scratch = mkdtempSync(join(tmpdir(), "berth-verifier-e2e-"));
    binDir = join(scratch, "bin");
    d = await startBerthd({ config: verifierConfig(binDir) });
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await registry?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  test("a denying verifier refuses the pull with its reason; nothing is left behind", async () => {
    verifiers({
      "10-allow": "echo fine",
      "20-deny": "echo 'image is not signed by a trusted key'; exit 3",
    });
    await assert.rejects(
      ctl(d, "-n", "denied", "images", "pull", "--plain-http", ref),
      (err: { stderr: string }) => {
        assert.match(
          err.stderr,
          new RegExp(
            `image verifier bindir blocked pull of ${ref.replace(/[.]/g, "\\.")} with digest ${image.manifestDigest} ` +
              "for reason: verifier 20-deny rejected image \\(exit code 3\\): image is not signed by a trusted key",
          ),
        );
        return true;
      },
    );
    const { stdout } = await ctl(d, "-n", "denied", "images", "ls", "-q");
    assert.equal(stdout, "");
    const client = d.client("denied");
    const content = [];
    for await (const r of client.service(Content).list({})) content.push(...r.info);
    assert.deepEqual(content, [], "nothing was fetched");
    assert.deepEqual((await client.service(Leases).list({})).leases, []);
  });

  test("accepting verifiers let the pull through, given containerd's arguments and the descriptor", async () => {
    const record = join(scratch, "recorded");
    verifiers({
      a: `printf '%s\\n' "$@" > ${record}.args; cat > ${record}.stdin; echo signed`,
      b: "echo also fine",
    });
    const { stdout } = await ctl(d, "-n", "allowed", "images", "pull", "-q", "--plain-http", ref);
    assert.equal(stdout, `${ref} ${image.manifestDigest}\n`);
    assert.deepEqual(readFileSync(`${record}.args`, "utf8").split("\n").slice(0, -1), [
      "-name",
      ref,
      "-digest",
      image.manifestDigest,
      "-stdin-media-type",
      "application/vnd.oci.descriptor.v1+json",
    ]);
    const mediaType = JSON.parse(image.manifest.toString()).mediaType as string;
    assert.equal(
      readFileSync(`${record}.stdin`, "utf8"),
      `{"mediaType":"${mediaType}","digest":"${image.manifestDigest}","size":${image.manifest.length}}\n`,
    );
    const list = await ctl(d, "-n", "allowed", "images", "ls", "-q");
    assert.equal(list.stdout, `${ref}\n`);
  });

  test("a verifier configuration that does not load refuses pulls", async () => {
    const bad = await startBerthd({ config: verifierConfig(binDir, "ten seconds") });
    try {
      verifiers({});
      await assert.rejects(
        ctl(bad, "images", "pull", "-q", "--plain-http", ref),
        (err: { stderr: string }) => {
          assert.match(
            err.stderr,
            /image verifier bindir returned error: the image verifier plugin did not load: .*per_verifier_timeout: time: invalid duration "ten seconds"/,
          );
          return true;
        },
      );
      assert.equal((await ctl(bad, "images", "ls", "-q")).stdout, "");
    } finally {
      await bad.stop();
      bad.cleanup();
    }
  });
});
