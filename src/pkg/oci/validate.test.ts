import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "../errdefs/errdefs.js";
import { defaultSpec } from "./defaults.js";
import { parseProcess, parseSpec, specToJSON } from "./validate.js";

const invalid = (re: RegExp) => (e: { code: Code; message: string }) =>
  e.code === Code.InvalidArgument && re.test(e.message);

const runnable = () => {
  const spec = defaultSpec("ns", "c");
  spec.process!.args = ["sh"];
  return spec;
};

test("a generated spec passes and round-trips", () => {
  const json = specToJSON(runnable());
  assert.deepEqual(parseSpec(json), JSON.parse(json));
  assert.deepEqual(parseSpec(Buffer.from(json)), JSON.parse(json));
});

test("fields Berth does not model are kept", () => {
  const raw = JSON.parse(specToJSON(runnable()));
  raw.vm = { hypervisor: { path: "/x" } };
  raw.process.ioPriority = { class: "IOPRIO_CLASS_IDLE" };
  raw.linux.personality = { domain: "LINUX32" };
  raw.mounts[0].uidMappings = [{ containerID: 0, hostID: 1, size: 1 }];
  const parsed = JSON.parse(specToJSON(parseSpec(JSON.stringify(raw))));
  assert.deepEqual(parsed, raw);
});

test("bad specs: clear InvalidArgument naming what is wrong", () => {
  assert.throws(() => parseSpec("{"), invalid(/not valid JSON/));
  assert.throws(() => parseSpec("[]"), invalid(/must be a JSON object/));
  assert.throws(() => parseSpec("{}"), invalid(/ociVersion: required; root: required; process: required/));
  const s = JSON.parse(specToJSON(runnable()));
  // biome-ignore lint/suspicious/noExplicitAny: the test breaks the JSON in arbitrary ways
  const broken = (change: (x: Record<string, any>) => void) => {
    const copy = structuredClone(s);
    change(copy);
    return JSON.stringify(copy);
  };
  assert.throws(() => parseSpec(broken((x) => delete x.process.args)), invalid(/process\.args: required/));
  assert.throws(() => parseSpec(broken((x) => (x.process.args = []))), invalid(/process\.args: required/));
  assert.throws(
    () => parseSpec(broken((x) => (x.process.args = ["sh", 1]))),
    invalid(/process\.args: must be an array of strings/),
  );
  assert.throws(
    () => parseSpec(broken((x) => (x.process.cwd = "rel"))),
    invalid(/process\.cwd: must be an absolute path/),
  );
  assert.throws(() => parseSpec(broken((x) => (x.process.user.uid = -1))), invalid(/process\.user\.uid/));
  assert.throws(() => parseSpec(broken((x) => delete x.process.user)), invalid(/process\.user: required/));
  assert.throws(() => parseSpec(broken((x) => (x.root.path = ""))), invalid(/root\.path: must not be empty/));
  assert.throws(
    () => parseSpec(broken((x) => (x.mounts[2] = { type: "bind" }))),
    invalid(/mounts\[2\]\.destination: required/),
  );
  assert.throws(
    () => parseSpec(broken((x) => (x.linux.namespaces[0].type = "pids"))),
    invalid(/linux\.namespaces\[0\]\.type: must be one of/),
  );
  assert.throws(() => parseSpec(broken((x) => (x.process.env = "A=1"))), invalid(/process\.env/));
  assert.throws(
    () => parseSpec(broken((x) => (x.process.rlimits[0].hard = "x"))),
    invalid(/process\.rlimits\[0\]\.hard/),
  );
  // Several problems are all named.
  assert.throws(
    () =>
      parseSpec(
        broken((x) => {
          x.ociVersion = 2;
          x.process.cwd = 5;
        }),
      ),
    invalid(/ociVersion: must be a string; .*process\.cwd: must be a string/),
  );
  // A spec without process is fine where none is needed.
  assert.doesNotThrow(() =>
    parseSpec(
      broken((x) => delete x.process),
      { requireProcess: false },
    ),
  );
});

test("exec process specs", () => {
  assert.deepEqual(parseProcess('{"args":["id"],"cwd":"/","user":{"uid":0,"gid":0}}').args, ["id"]);
  assert.throws(
    () => parseProcess('{"cwd":"/","user":{"uid":0,"gid":0}}'),
    invalid(/process spec: process\.args: required/),
  );
  assert.throws(() => parseProcess("nope"), invalid(/OCI process spec: not valid JSON/));
});
