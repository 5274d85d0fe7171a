import assert from "node:assert/strict";
import { test } from "node:test";
import { distributionSourceLabel, mountCandidate } from "./pusher.js";

test("distribution source labels name the host without port or IPv6 brackets, as containerd's", () => {
  assert.equal(
    distributionSourceLabel("registry.example:5000"),
    "containerd.io/distribution.source.registry.example",
  );
  assert.equal(distributionSourceLabel("[::1]:5000"), "containerd.io/distribution.source.::1");
  assert.equal(distributionSourceLabel("docker.io"), "containerd.io/distribution.source.docker.io");
});

test("the mount candidate is the source repository sharing most leading components", () => {
  const labels = { "containerd.io/distribution.source.::1": "team/a/base,other/x,team/b/app" };
  assert.equal(mountCandidate("[::1]:5000", "team/b/web", labels), "team/b/app");
  assert.equal(mountCandidate("[::1]:5000", "team/b/app", labels), "team/a/base");
  assert.equal(mountCandidate("127.0.0.1:5000", "team/b/web", labels), "");
});
