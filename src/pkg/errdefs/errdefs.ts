// Domain errors and their gRPC status codes. Core code throws these; transports (gRPC, ttrpc)
// map them to status codes at the boundary and back again on the client side.

/** gRPC status codes (numeric values are the wire values). */
export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

export class BerthError extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BerthError";
    this.code = code;
  }
}

export const notFound = (message: string) => new BerthError(Code.NotFound, message);
export const alreadyExists = (message: string) => new BerthError(Code.AlreadyExists, message);
export const invalidArgument = (message: string) => new BerthError(Code.InvalidArgument, message);
export const failedPrecondition = (message: string) => new BerthError(Code.FailedPrecondition, message);
export const unavailable = (message: string) => new BerthError(Code.Unavailable, message);
export const unimplemented = (message: string) => new BerthError(Code.Unimplemented, message);
export const canceled = (message: string) => new BerthError(Code.Canceled, message);
export const deadlineExceeded = (message: string) => new BerthError(Code.DeadlineExceeded, message);
export const resourceExhausted = (message: string) => new BerthError(Code.ResourceExhausted, message);
export const permissionDenied = (message: string) => new BerthError(Code.PermissionDenied, message);
export const unauthenticated = (message: string) => new BerthError(Code.Unauthenticated, message);
export const dataLoss = (message: string) => new BerthError(Code.DataLoss, message);
export const internal = (message: string, cause?: unknown) =>
  new BerthError(Code.Internal, message, { cause });

/** The status code an error travels with: BerthError's own, Unknown for anything else. */
export function codeOf(err: unknown): Code {
  if (err instanceof BerthError) return err.code;
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "number" && code >= 0 && code <= 16) return code;
  }
  return Code.Unknown;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const isNotFound = (err: unknown) => codeOf(err) === Code.NotFound;
export const isAlreadyExists = (err: unknown) => codeOf(err) === Code.AlreadyExists;
