import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import {
  all,
  defaultStrict,
  only,
  onlyStrict,
  ordered,
  platformVector,
  sortByPreference,
} from "./compare.js";
import { defaultSpec, format, formatAll, normalize, type Platform, parse } from "./platform.js";

const p = (s: string): Platform => parse(s);

describe("platform parsing", () => {
  test("full specifiers normalise architectures and variants", () => {
    assert.deepEqual(parse("linux/amd64"), { os: "linux", architecture: "amd64" });
    assert.deepEqual(parse("linux/x86_64"), { os: "linux", architecture: "amd64" });
    assert.deepEqual(parse("Linux/AArch64"), { os: "linux", architecture: "arm64" });
    assert.deepEqual(parse("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
    assert.deepEqual(parse("linux/arm64"), { os: "linux", architecture: "arm64" });
    assert.deepEqual(parse("linux/arm"), { os: "linux", architecture: "arm" });
    assert.deepEqual(parse("linux/arm/7"), { os: "linux", architecture: "arm", variant: "v7" });
    // v7 is arm's default variant: two components drop it, as containerd does.
    assert.deepEqual(parse("linux/armhf"), { os: "linux", architecture: "arm" });
    assert.deepEqual(parse("linux/armel"), { os: "linux", architecture: "arm", variant: "v6" });
    assert.deepEqual(parse("linux/arm/v5"), { os: "linux", architecture: "arm", variant: "v5" });
    assert.deepEqual(parse("linux/i386"), { os: "linux", architecture: "386" });
    assert.deepEqual(parse("macos/arm64"), { os: "darwin", architecture: "arm64" });
  });

  test("one component is an OS (host architecture) or an architecture (host OS)", () => {
    assert.deepEqual(parse("linux"), { os: "linux", architecture: "amd64" });
    assert.deepEqual(parse("arm64"), { os: "linux", architecture: "arm64" });
    assert.deepEqual(parse("armhf"), { os: "linux", architecture: "arm" });
  });

  test("os version and features", () => {
    const w = parse("windows(10.0.17763+win32k)/amd64");
    assert.deepEqual(w, {
      os: "windows",
      osVersion: "10.0.17763",
      osFeatures: ["win32k"],
      architecture: "amd64",
    });
    assert.equal(formatAll(w), "windows(10.0.17763+win32k)/amd64");
    assert.equal(format(w), "windows/amd64");
    assert.equal(formatAll({ os: "linux", architecture: "amd64", osVersion: "a+b" }), "linux(a%2Bb)/amd64");
    assert.equal(parse("linux(a%2Bb)/amd64").osVersion, "a+b");
  });

  test("bad specifiers are refused with InvalidArgument naming the input", () => {
    for (const bad of ["", "linux/*", "linux/amd64/v2/x", "lin ux/amd64", "nope", "linux/am d64"]) {
      assert.throws(
        () => parse(bad),
        (e: Error) => codeOf(e) === Code.InvalidArgument && e.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
  });

  test("format and normalise", () => {
    assert.equal(format({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
    assert.equal(format({ os: "", architecture: "amd64" }), "unknown");
    assert.deepEqual(normalize({ os: "linux", architecture: "aarch64", variant: "8" }), {
      os: "linux",
      architecture: "arm64",
    });
    assert.deepEqual(normalize({ os: "linux", architecture: "x86_64", variant: "v1" }), {
      os: "linux",
      architecture: "amd64",
    });
  });

  test("the host default is this machine's", () => {
    assert.equal(defaultSpec().os, "linux");
    assert.equal(defaultSpec().architecture, process.arch === "x64" ? "amd64" : defaultSpec().architecture);
    assert.equal(defaultStrict().match(p("linux/amd64")), process.arch === "x64");
  });
});

describe("platform matching and ordering", () => {
  test("only() accepts what the platform runs, closest first", () => {
    const amd64 = only(p("linux/amd64"));
    assert.ok(amd64.match(p("linux/amd64")));
    assert.ok(amd64.match(p("linux/386")));
    assert.ok(!amd64.match(p("linux/arm64")));
    assert.ok(amd64.less(p("linux/amd64"), p("linux/386")));
    assert.ok(!amd64.less(p("linux/386"), p("linux/amd64")));

    const arm64 = only(p("linux/arm64"));
    for (const ok of [
      "linux/arm64",
      "linux/arm64/v8",
      "linux/arm/v8",
      "linux/arm/v7",
      "linux/arm/v6",
      "linux/arm/v5",
    ])
      assert.ok(arm64.match(p(ok)), ok);
    assert.ok(!arm64.match(p("linux/amd64")));
    assert.ok(arm64.less(p("linux/arm/v7"), p("linux/arm/v6")));

    const armv7 = only(p("linux/arm/v7"));
    assert.ok(armv7.match(p("linux/arm/v6")));
    assert.ok(!armv7.match(p("linux/arm/v8")));
    assert.ok(!armv7.match(p("linux/arm64")));
  });

  test("amd64 levels run lower levels", () => {
    const v3 = only({ os: "linux", architecture: "amd64", variant: "v3" });
    assert.ok(v3.match({ os: "linux", architecture: "amd64", variant: "v2" }));
    assert.ok(v3.match({ os: "linux", architecture: "amd64" }));
    assert.ok(!v3.match({ os: "linux", architecture: "amd64", variant: "v4" }));
  });

  test("arm64 v9 runs v8.x", () => {
    const vec = platformVector({ os: "linux", architecture: "arm64", variant: "v9.2" }).map(format);
    assert.deepEqual(vec.slice(0, 4), [
      "linux/arm64/v9.2",
      "linux/arm64/v9.1",
      "linux/arm64/v9",
      "linux/arm64/v8.7",
    ]);
    assert.ok(vec.includes("linux/arm/v5"));
  });

  test("onlyStrict, ordered, all", () => {
    const strict = onlyStrict(p("linux/amd64"));
    assert.ok(strict.match(p("linux/amd64")));
    assert.ok(!strict.match(p("linux/386")));
    const ord = ordered(p("linux/arm64"), p("linux/amd64"));
    assert.ok(ord.less(p("linux/arm64"), p("linux/amd64")));
    assert.ok(!ord.match(p("linux/s390x")));
    assert.ok(all.match(p("windows/arm64")));
  });

  test("OS mismatch never matches; OS features must be offered by the matcher", () => {
    assert.ok(!only(p("linux/amd64")).match(p("windows/amd64")));
    const withFeature = onlyStrict({ os: "linux", architecture: "amd64", osFeatures: ["a", "b"] });
    assert.ok(withFeature.match({ os: "linux", architecture: "amd64", osFeatures: ["b"] }));
    assert.ok(!onlyStrict(p("linux/amd64")).match({ os: "linux", architecture: "amd64", osFeatures: ["b"] }));
  });

  test("sortByPreference puts the best first and entries without a platform last", () => {
    const items = [{ p: p("linux/386") }, { p: undefined }, { p: p("linux/amd64") }];
    const sorted = sortByPreference(items, (i) => i.p, only(p("linux/amd64")));
    assert.deepEqual(
      sorted.map((i) => (i.p ? format(i.p) : "none")),
      ["linux/amd64", "linux/386", "none"],
    );
  });
});
