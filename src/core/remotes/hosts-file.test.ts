import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Code, codeOf } from "../../pkg/errdefs/errdefs.js";
import { isLocalhost, RegistryHosts } from "./hosts.js";
import { findHostDir, hostDirCandidates, loadHostDir, parseHostsFile } from "./hosts-file.js";

const FILE = "/etc/berth/certs.d/r.example/hosts.toml";
const DIR = "/etc/berth/certs.d/r.example";

test("hosts.toml: mirrors in file order, then the server, with containerd's fields", () => {
  const hosts = parseHostsFile(
    FILE,
    DIR,
    `server = "https://registry.example:5000"
ca = "/abs/ca.pem"

[host."https://mirror-b.example"]
  capabilities = ["pull", "resolve"]
  ca = ["ca1.crt", "/abs/ca2.crt"]
  client = [["client.cert", "client.key"], "both.pem"]
  skip_verify = false
  dial_timeout = "2s"
  [host."https://mirror-b.example".header]
    x-custom = "1"
    x-list = ["a", "b"]

[host."http://mirror-a.example:8080/custom/api"]
  capabilities = ["pull"]
  override_path = true

[host."mirror-c.example/prefix"]
`,
  );
  assert.deepEqual(
    hosts.map((h) => [h.scheme, h.host, h.path, h.capabilities]),
    [
      ["https", "mirror-b.example", "/v2", ["pull", "resolve"]],
      ["http", "mirror-a.example:8080", "/custom/api", ["pull"]],
      ["https", "mirror-c.example", "/prefix/v2", ["pull", "resolve", "push"]],
      ["https", "registry.example:5000", "/v2", ["pull", "resolve", "push"]],
    ],
  );
  const b = hosts[0]!;
  assert.deepEqual(b.ca, [`${DIR}/ca1.crt`, "/abs/ca2.crt"]);
  assert.deepEqual(b.clientPairs, [
    [`${DIR}/client.cert`, `${DIR}/client.key`],
    [`${DIR}/both.pem`, ""],
  ]);
  assert.equal(b.skipVerify, false);
  assert.equal(b.dialTimeoutMs, 2000);
  assert.deepEqual(b.header, { "x-custom": ["1"], "x-list": ["a", "b"] });
  assert.deepEqual(hosts[3]!.ca, ["/abs/ca.pem"]);
});

test("hosts.toml without a server leaves the registry itself as the last host", () => {
  const hosts = parseHostsFile(FILE, DIR, `[host."http://127.0.0.1:5000"]\n  capabilities = ["pull"]\n`);
  assert.equal(hosts.length, 2);
  assert.equal(hosts[1]!.host, "");
});

test("bad hosts.toml files name the file and the key", () => {
  const cases: [string, RegExp][] = [
    [`server = `, /hosts\.toml: invalid TOML/],
    [`server = 5`, /hosts\.toml: server must be a string/],
    [
      `[host."https://m"]\ncapabilities = ["pull", "fly"]`,
      /host\."https:\/\/m"\.capabilities: unknown capability "fly"/,
    ],
    [`capabilities = "pull"`, /: capabilities: must be an array of strings/],
    [`skip_verify = "yes"`, /: skip_verify: must be a boolean/],
    [`ca = 3`, /: ca: must be a file name/],
    [
      `[host."https://m"]\nclient = [["only-one"]]`,
      /host\."https:\/\/m"\.client\[0\]: must be a file name or a \[certificate, key\] pair/,
    ],
    [`[header]\nx = 1`, /: header\."x": must be a string or an array of strings/],
    [`dial_timeout = "soon"`, /: dial_timeout: time: invalid duration "soon"/],
    [`server = "ftp://x"`, /: server: scheme must be http or https/],
    [`host = 1`, /"host" must be a table/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseHostsFile(FILE, DIR, text),
      (err: unknown) => {
        assert.equal(codeOf(err), Code.InvalidArgument);
        assert.ok((err as Error).message.startsWith(`${FILE}: `), (err as Error).message);
        assert.match((err as Error).message, message);
        return true;
      },
      text,
    );
  }
});

test("host directories: host_port_, host:port, then _default; Docker's cert layout without hosts.toml", async () => {
  assert.deepEqual(hostDirCandidates("/c", "r.example:5000"), [
    "/c/r.example_5000_",
    "/c/r.example:5000",
    "/c/_default",
  ]);
  assert.deepEqual(hostDirCandidates("/c", "docker.io"), ["/c/docker.io", "/c/_default"]);
  const root = mkdtempSync(join(tmpdir(), "berth-hostsdir-"));
  try {
    assert.equal(await findHostDir(root, "r.example:5000"), undefined);
    mkdirSync(join(root, "_default"));
    assert.equal(await findHostDir(root, "r.example:5000"), join(root, "_default"));
    mkdirSync(join(root, "r.example:5000"));
    assert.equal(await findHostDir(root, "r.example:5000"), join(root, "r.example:5000"));
    const dir = join(root, "r.example:5000");
    for (const f of ["ca.crt", "client.cert", "client.key", "other.cert"]) writeFileSync(join(dir, f), "x");
    const [entry] = await loadHostDir(dir);
    assert.deepEqual(entry!.ca, [join(dir, "ca.crt")]);
    assert.deepEqual(entry!.clientPairs, [
      [join(dir, "client.cert"), join(dir, "client.key")],
      [join(dir, "other.cert"), ""],
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("defaults: docker.io is registry-1.docker.io; plain HTTP only when asked", async () => {
  const lookup = async (opts: ConstructorParameters<typeof RegistryHosts>[0], host: string) => {
    const hosts = new RegistryHosts(opts);
    try {
      return (await hosts.lookup(host)).map((h) => `${h.scheme}://${h.host}${h.path}`);
    } finally {
      await hosts.close();
    }
  };
  assert.deepEqual(await lookup({}, "docker.io"), ["https://registry-1.docker.io/v2"]);
  assert.deepEqual(await lookup({ plainHttp: true }, "docker.io"), ["https://registry-1.docker.io/v2"]);
  assert.deepEqual(await lookup({}, "localhost:5000"), ["https://localhost:5000/v2"]);
  assert.deepEqual(await lookup({ plainHttp: "localhost" }, "localhost:5000"), ["http://localhost:5000/v2"]);
  assert.deepEqual(await lookup({ plainHttp: "localhost" }, "r.example"), ["https://r.example/v2"]);
  assert.deepEqual(await lookup({ plainHttp: true }, "r.example"), ["http://r.example/v2"]);
  assert.ok(isLocalhost("127.0.0.1:5000") && isLocalhost("[::1]:5000") && isLocalhost("localhost"));
  assert.ok(!isLocalhost("10.0.0.1:5000") && !isLocalhost("localhost.example"));
});
