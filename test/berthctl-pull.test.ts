// berthctl images pull and push against real registries (Debian's docker-registry) and a real berthd:
// plain HTTP with --plain-http (unpacked, per-layer progress lines on a non-terminal stderr),
// --no-unpack, and TLS with basic auth through --hosts-dir (the test CA) and --user, the
// credentials reaching the daemon over the Transfer auth stream; push of a pulled image under
// a new name, pulled back into another namespace.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Images } from "../src/api/services/images/v1/images_pb.js";
import { Snapshots } from "../src/api/services/snapshots/v1/snapshots_pb.js";
import { chainIds } from "../src/core/images/chainid.js";
import { Resolver } from "../src/core/remotes/resolver.js";
import { BERTHCTL, type Daemon, startBerthd } from "./support/daemon.js";
import { type BuiltImage, buildImage } from "./support/images.js";
import { pushImage, startRegistry, type TestRegistry } from "./support/registry.js";

const exec = promisify(execFile);

describe("berthctl images pull and push", () => {
  let d: Daemon;
  let plain: TestRegistry;
  let secured: TestRegistry;
  let image: BuiltImage;
  let certsd: string;

  const ctl = (...args: string[]) =>
    exec(process.execPath, [BERTHCTL, "--address", d.address, ...args], { timeout: 120_000 });

  before(async () => {
    [plain, secured, d] = await Promise.all([
      startRegistry("http"),
      startRegistry("basic-auth"),
      startBerthd(),
    ]);
    image = await buildImage({ compression: "gzip" });
    certsd = mkdtempSync(join(tmpdir(), "berth-certsd-"));
    mkdirSync(join(certsd, secured.host));
    writeFileSync(join(certsd, secured.host, "hosts.toml"), `ca = "${secured.caFile}"\n`);
    const open = new Resolver({ plainHttp: true });
    const authed = new Resolver({
      hostsDir: certsd,
      credentials: () => ({ username: secured.username, secret: secured.password }),
    });
    try {
      await pushImage(await open.pusher(`${plain.host}/cli/app:v1`), image, "v1");
      await pushImage(await authed.pusher(`${secured.host}/private/app:v2`), image, "v2");
    } finally {
      await open.close();
      await authed.close();
    }
  });
  after(async () => {
    await d?.stop();
    d?.cleanup();
    await plain?.stop();
    await secured?.stop();
    rmSync(certsd, { recursive: true, force: true });
  });

  test("--plain-http pulls and unpacks, printing per-layer byte counts", async () => {
    const ref = `${plain.host}/cli/app:v1`;
    const { stdout, stderr } = await ctl(
      "-n",
      "cli",
      "images",
      "pull",
      "--plain-http",
      "--platform",
      "linux/amd64",
      ref,
    );
    assert.equal(stdout, `${ref} ${image.manifestDigest}\n`);
    for (const l of image.layers) {
      const size = l.blob.length;
      const key = `layer-${l.digest.slice(0, "sha256:".length + 12)}`;
      assert.match(stderr, new RegExp(`${key}: waiting 0\\.0 B/`), stderr);
      const line = stderr.split("\n").find((s) => s.startsWith(`${key}: complete `));
      assert.ok(line, `a complete line for ${key} in:\n${stderr}`);
      assert.ok(line.endsWith(size < 1024 ? `${size}.0 B/${size}.0 B` : "iB"), line);
    }
    assert.match(stderr, /Completed pull from OCI Registry/);
    const list = await ctl("-n", "cli", "images", "ls", "-q");
    assert.equal(list.stdout, `${ref}\n`);
    const client = d.client("cli");
    for (const key of chainIds(image.diffIds))
      assert.equal((await client.service(Snapshots).stat({ snapshotter: "overlayfs", key })).info?.kind, 3);
  });

  test("--no-unpack stores the image without snapshots", async () => {
    const ref = `${plain.host}/cli/app:v1`;
    await ctl("-n", "cli-nounpack", "images", "pull", "-q", "--plain-http", "--no-unpack", ref);
    const client = d.client("cli-nounpack");
    const { image: record } = await client.service(Images).get({ name: ref });
    assert.equal(record?.target?.digest, image.manifestDigest);
    const snapshots = [];
    for await (const r of client.service(Snapshots).list({ snapshotter: "overlayfs" }))
      snapshots.push(...r.info);
    assert.deepEqual(snapshots, []);
  });

  test("--hosts-dir and --user reach a TLS registry with basic auth; without --user it is refused", async () => {
    const ref = `${secured.host}/private/app:v2`;
    await assert.rejects(
      ctl("-n", "cli-auth", "images", "pull", "-q", "--hosts-dir", certsd, ref),
      (err: { stderr?: string }) => /basic auth|credentials|unauthenticated/i.test(err.stderr ?? ""),
    );
    const user = `${secured.username}:${secured.password}`;
    const { stdout } = await ctl(
      "-n",
      "cli-auth",
      "images",
      "pull",
      "-q",
      "--hosts-dir",
      certsd,
      "--user",
      user,
      ref,
    );
    assert.equal(stdout, `${ref} ${image.manifestDigest}\n`);
    // berthd logs at debug level here: neither the password nor the basic credentials appear.
    const logs = d.logs();
    assert.match(logs, /private\/app/, "the pull was logged");
    for (const secret of [secured.password, Buffer.from(user).toString("base64")])
      assert.equal(logs.includes(secret), false, "a credential reached berthd's log");
  });

  test("push sends a local image under a new name with --user; pulling it back gives the same digest", async () => {
    const local = `${plain.host}/cli/app:v1`;
    const target = `${secured.host}/private/copied:v3`;
    const user = `${secured.username}:${secured.password}`;
    const { stderr } = await ctl(
      "-n",
      "cli",
      "images",
      "push",
      "--hosts-dir",
      certsd,
      "--user",
      user,
      target,
      local,
    );
    assert.match(stderr, /Completed push to OCI Registry/);
    assert.match(
      stderr,
      new RegExp(`manifest-sha256:${image.manifestDigest.slice(7, 19)}: (complete|already exists)`),
    );
    const { stdout } = await ctl(
      "-n",
      "cli-back",
      "images",
      "pull",
      "-q",
      "--hosts-dir",
      certsd,
      "--user",
      user,
      target,
    );
    assert.equal(stdout, `${target} ${image.manifestDigest}\n`);
  });
});
