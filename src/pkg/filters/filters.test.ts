import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, codeOf } from "../errdefs/errdefs.js";
import { fieldsAndLabels, parseFilter, parseFilters } from "./filters.js";

const image = fieldsAndLabels(
  { name: "docker.io/library/busybox:latest", "target.mediatype": undefined },
  { "a.b": "c", foo: "bar baz", empty: "" },
);

const matches = (f: string) => parseFilter(f).match(image);

test("equality, inequality and presence", () => {
  assert.equal(matches("name==docker.io/library/busybox:latest"), true);
  assert.equal(matches("name==other"), false);
  assert.equal(matches("name!=other"), true);
  assert.equal(matches("name"), true);
  assert.equal(matches("labels.empty"), true);
  assert.equal(matches("labels.missing"), false);
  assert.equal(matches("labels.missing!=x"), true);
  assert.equal(matches(""), true);
});

test("label keys with dots, quoted and unquoted", () => {
  assert.equal(matches('labels."a.b"==c'), true);
  assert.equal(matches("labels.a.b==c"), true);
  assert.equal(matches('labels."foo"=="bar baz"'), true);
  assert.equal(matches("labels.foo==bar"), false);
});

test("regular expressions with alternative quotes", () => {
  assert.equal(matches("name~=^docker"), true);
  assert.equal(matches("name~=/busy.*:latest$/"), true);
  assert.equal(matches("name~=|^docker.io/library|"), true);
  assert.equal(matches("name~=^quay"), false);
  assert.equal(matches("labels.missing~=^$"), true);
});

test("comma is AND; several filters are OR", () => {
  assert.equal(matches('name~=busybox,labels."a.b"==c'), true);
  assert.equal(matches('name~=busybox,labels."a.b"==d'), false);
  assert.equal(parseFilters(["name==x", "labels.foo"]).match(image), true);
  assert.equal(parseFilters(["name==x", "labels.nope"]).match(image), false);
  assert.equal(parseFilters([]).match(image), true);
});

test("values may contain dots and punctuation after the operator", () => {
  const f = fieldsAndLabels({ id: "1.2.3" });
  assert.equal(parseFilter("id==1.2.3").match(f), true);
  assert.equal(parseFilter("id==1.2").match(f), false);
});

test("parse errors are InvalidArgument and say where", () => {
  for (const bad of [
    "name==",
    "name=",
    "name===x",
    "==x",
    "labels.",
    'labels."a',
    "name~=/x",
    "name==\u0000",
    "a,",
  ]) {
    assert.throws(
      () => parseFilter(bad),
      (e) => codeOf(e) === Code.InvalidArgument && /filters: parse error/.test((e as Error).message),
      JSON.stringify(bad),
    );
  }
  assert.throws(() => parseFilter("name~=("), /invalid regular expression/);
  assert.throws(() => parseFilter("name==/x/"), /invalid quote encountered/);
});
