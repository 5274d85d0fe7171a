// Identifier rules shared by namespaces, containers, leases, snapshots keys' owners...:
// alphanumeric runs joined by single `.`, `_` or `-`, at most 76 characters (containerd's rule).
import { invalidArgument } from "../errdefs/errdefs.js";

export const MAX_IDENTIFIER_LENGTH = 76;
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

export function validateIdentifier(s: string): void {
  if (s.length === 0) throw invalidArgument("identifier must not be empty");
  if (s.length > MAX_IDENTIFIER_LENGTH) {
    throw invalidArgument(
      `identifier ${JSON.stringify(s)} greater than maximum length (${MAX_IDENTIFIER_LENGTH} characters)`,
    );
  }
  if (!IDENTIFIER.test(s))
    throw invalidArgument(`identifier ${JSON.stringify(s)} must match ${IDENTIFIER.source}`);
}
