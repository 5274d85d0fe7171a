import type { BerthClient } from "../../client/client.js";
import type { Format } from "./output.js";

export interface Globals {
  format: Format;
  client(): BerthClient;
}
