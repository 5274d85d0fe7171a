// ttrpc's own protobuf messages (package ttrpc: Request, Response, KeyValue, and google.rpc.Status),
// encoded by hand with the low-level wire codec so the library needs no generated code.
//
//   Request  { string service = 1; string method = 2; bytes payload = 3; int64 timeout_nano = 4;
//              repeated KeyValue metadata = 5; }
//   KeyValue { string key = 1; string value = 2; }
//   Response { google.rpc.Status status = 1; bytes payload = 2; }
//   Status   { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export interface KeyValue {
  key: string;
  value: string;
}

export interface RequestEnvelope {
  service: string;
  method: string;
  /** Undefined when the field is absent (streaming clients send their data separately). */
  payload?: Uint8Array | undefined;
  /** Relative deadline in nanoseconds; 0 means none. */
  timeoutNano: bigint;
  metadata: KeyValue[];
}

/** google.rpc.Status without details (ttrpc peers in the containerd ecosystem send none). */
export interface Status {
  code: number;
  message: string;
}

export interface ResponseEnvelope {
  status?: Status | undefined;
  payload: Uint8Array;
}

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvelopeError";
  }
}

export function encodeRequest(req: RequestEnvelope): Uint8Array {
  const w = new BinaryWriter();
  if (req.service !== "") w.tag(1, WireType.LengthDelimited).string(req.service);
  if (req.method !== "") w.tag(2, WireType.LengthDelimited).string(req.method);
  if (req.payload !== undefined && req.payload.length > 0)
    w.tag(3, WireType.LengthDelimited).bytes(req.payload);
  if (req.timeoutNano !== 0n) w.tag(4, WireType.Varint).int64(req.timeoutNano);
  for (const kv of req.metadata) {
    w.tag(5, WireType.LengthDelimited).fork();
    if (kv.key !== "") w.tag(1, WireType.LengthDelimited).string(kv.key);
    if (kv.value !== "") w.tag(2, WireType.LengthDelimited).string(kv.value);
    w.join();
  }
  return w.finish();
}

export function decodeRequest(bytes: Uint8Array): RequestEnvelope {
  const req: RequestEnvelope = { service: "", method: "", timeoutNano: 0n, metadata: [] };
  readFields(bytes, (r, field, wt) => {
    switch (field) {
      case 1:
        req.service = expect(r, wt, WireType.LengthDelimited, field).string();
        return true;
      case 2:
        req.method = expect(r, wt, WireType.LengthDelimited, field).string();
        return true;
      case 3:
        req.payload = expect(r, wt, WireType.LengthDelimited, field).bytes();
        return true;
      case 4:
        req.timeoutNano = BigInt(expect(r, wt, WireType.Varint, field).int64());
        return true;
      case 5:
        req.metadata.push(decodeKeyValue(expect(r, wt, WireType.LengthDelimited, field).bytes()));
        return true;
      default:
        return false;
    }
  });
  return req;
}

function decodeKeyValue(bytes: Uint8Array): KeyValue {
  const kv: KeyValue = { key: "", value: "" };
  readFields(bytes, (r, field, wt) => {
    if (field === 1) kv.key = expect(r, wt, WireType.LengthDelimited, field).string();
    else if (field === 2) kv.value = expect(r, wt, WireType.LengthDelimited, field).string();
    else return false;
    return true;
  });
  return kv;
}

export function encodeResponse(res: ResponseEnvelope): Uint8Array {
  const w = new BinaryWriter();
  if (res.status !== undefined) {
    w.tag(1, WireType.LengthDelimited).fork();
    if (res.status.code !== 0) w.tag(1, WireType.Varint).int32(res.status.code);
    if (res.status.message !== "") w.tag(2, WireType.LengthDelimited).string(res.status.message);
    w.join();
  }
  if (res.payload.length > 0) w.tag(2, WireType.LengthDelimited).bytes(res.payload);
  return w.finish();
}

export function decodeResponse(bytes: Uint8Array): ResponseEnvelope {
  const res: ResponseEnvelope = { payload: new Uint8Array(0) };
  readFields(bytes, (r, field, wt) => {
    if (field === 1) res.status = decodeStatus(expect(r, wt, WireType.LengthDelimited, field).bytes());
    else if (field === 2) res.payload = expect(r, wt, WireType.LengthDelimited, field).bytes();
    else return false;
    return true;
  });
  return res;
}

function decodeStatus(bytes: Uint8Array): Status {
  const st: Status = { code: 0, message: "" };
  readFields(bytes, (r, field, wt) => {
    if (field === 1) st.code = expect(r, wt, WireType.Varint, field).int32();
    else if (field === 2) st.message = expect(r, wt, WireType.LengthDelimited, field).string();
    else return false; // details (field 3) are skipped
    return true;
  });
  return st;
}

/** Calls `onField` for each field; when it returns false the field is skipped as unknown. */
function readFields(
  bytes: Uint8Array,
  onField: (r: BinaryReader, field: number, wt: WireType) => boolean,
): void {
  const r = new BinaryReader(bytes);
  try {
    while (r.pos < r.len) {
      const [field, wt] = r.tag();
      if (!onField(r, field, wt)) r.skip(wt, field);
    }
  } catch (err) {
    if (err instanceof EnvelopeError) throw err;
    throw new EnvelopeError(`malformed message: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function expect(r: BinaryReader, got: WireType, want: WireType, field: number): BinaryReader {
  if (got !== want) throw new EnvelopeError(`field ${field}: wire type ${got}, expected ${want}`);
  return r;
}
