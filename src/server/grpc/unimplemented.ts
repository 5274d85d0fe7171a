// Every containerd service berthd does not serve yet is still routed, so that each of its
// methods answers Unimplemented (not an HTTP error) until its implementation lands.
import type { DescService } from "@bufbuild/protobuf";
import { Containers } from "../../api/services/containers/v1/containers_pb.js";
import { Content } from "../../api/services/content/v1/content_pb.js";
import { Diff } from "../../api/services/diff/v1/diff_pb.js";
import { Events } from "../../api/services/events/v1/events_pb.js";
import { Images } from "../../api/services/images/v1/images_pb.js";
import { Introspection } from "../../api/services/introspection/v1/introspection_pb.js";
import { Leases } from "../../api/services/leases/v1/leases_pb.js";
import { Mounts } from "../../api/services/mounts/v1/mounts_pb.js";
import { Namespaces } from "../../api/services/namespaces/v1/namespace_pb.js";
import { Controller, Store } from "../../api/services/sandbox/v1/sandbox_pb.js";
import { Snapshots } from "../../api/services/snapshots/v1/snapshots_pb.js";
import { Streaming } from "../../api/services/streaming/v1/streaming_pb.js";
import { Tasks } from "../../api/services/tasks/v1/tasks_pb.js";
import { Transfer } from "../../api/services/transfer/v1/transfer_pb.js";
import { Version } from "../../api/services/version/v1/version_pb.js";

export const CONTAINERD_SERVICES: readonly DescService[] = [
  Containers,
  Content,
  Diff,
  Events,
  Images,
  Introspection,
  Leases,
  Mounts,
  Namespaces,
  Store,
  Controller,
  Snapshots,
  Streaming,
  Tasks,
  Transfer,
  Version,
];
