import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../pkg/errdefs/errdefs.js";
import { type Envelope, Exchange, validateTopic } from "./exchange.js";

const invalid = (re: RegExp) => (err: unknown) =>
  (err as { code: Code }).code === Code.InvalidArgument && re.test((err as Error).message);

describe("exchange", () => {
  test("topics are absolute paths of identifiers", () => {
    for (const ok of ["/a", "/namespaces/create", "/tasks/exec-added", "/x/y_z/v1.2"]) validateTopic(ok);
    assert.throws(() => validateTopic(""), invalid(/must not be empty/));
    assert.throws(() => validateTopic("a/b"), invalid(/must start with '\/'/));
    assert.throws(() => validateTopic("/"), invalid(/at least one component/));
    assert.throws(() => validateTopic("/a//b"), invalid(/component ""/));
    assert.throws(() => validateTopic("/a/"), invalid(/component ""/));
    assert.throws(() => validateTopic("/a/B c"), invalid(/component "B c"/));
    assert.throws(() => validateTopic(`/${"a".repeat(77)}`), invalid(/maximum length/));
  });

  test("publish stamps the envelope and delivers it to every subscriber in order", () => {
    const ex = new Exchange();
    const a: Envelope[] = [];
    const b: Envelope[] = [];
    ex.subscribe((e) => a.push(e));
    const stopB = ex.subscribe((e) => b.push(e));
    const before = BigInt(Math.floor(Date.now() / 1000));
    ex.publish("ns", "/t/one", 1);
    stopB();
    ex.publish("ns", "/t/two", 2);
    assert.deepEqual(
      a.map((e) => [e.namespace, e.topic, e.event]),
      [
        ["ns", "/t/one", 1],
        ["ns", "/t/two", 2],
      ],
    );
    assert.equal(b.length, 1);
    assert.ok(a[0]!.timestamp.seconds >= before);
    assert.ok(a[0]!.timestamp.nanos >= 0 && a[0]!.timestamp.nanos < 1e9);
    assert.throws(() => ex.publish("Bad NS", "/t", 1), invalid(/identifier/));
    assert.throws(() => ex.publish("ns", "t", 1), invalid(/must start with/));
  });

  test("forward delivers the envelope as it is, after validating it", () => {
    const ex = new Exchange();
    const got: Envelope[] = [];
    ex.subscribe((e) => got.push(e));
    const env = { timestamp: { seconds: 5n, nanos: 7 }, namespace: "ns", topic: "/t", event: "x" };
    ex.forward(env);
    assert.equal(got[0], env);
    assert.throws(() => ex.forward({ ...env, namespace: "" }), invalid(/invalid namespace/));
    assert.throws(() => ex.forward({ ...env, topic: "/" }), invalid(/component/));
    const zero = { ...env, timestamp: { seconds: -62135596800n, nanos: 0 } };
    assert.throws(() => ex.forward(zero), invalid(/timestamp must be set/));
    assert.equal(got.length, 1);
  });
});
