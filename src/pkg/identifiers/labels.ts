// Label validation: key and value together may hold at most 4096 bytes (containerd's limit).
import { invalidArgument, messageOf } from "../errdefs/errdefs.js";

export const MAX_LABEL_SIZE = 4096;

export function validateLabel(key: string, value: string): void {
  const size = Buffer.byteLength(key) + Buffer.byteLength(value);
  if (size > MAX_LABEL_SIZE) {
    const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key;
    throw invalidArgument(
      `label key and value length (${size} bytes) greater than maximum size (${MAX_LABEL_SIZE} bytes), key: ${shown}`,
    );
  }
}

/** Validates every label; with a context, errors read `<context>: <reason>`. */
export function validateLabels(labels: Record<string, string>, context?: string): void {
  for (const [k, v] of Object.entries(labels)) {
    try {
      validateLabel(k, v);
    } catch (err) {
      if (context === undefined) throw err;
      throw invalidArgument(`${context}: ${messageOf(err)}`);
    }
  }
}
