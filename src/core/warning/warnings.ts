// Deprecation warnings the daemon has noticed (old config versions, deprecated options...),
// each kept once by id with the time it was last seen; listed by introspection.
export interface Warning {
  id: string;
  message: string;
  lastOccurrence: Date;
}

export class Warnings {
  private readonly byId = new Map<string, Warning>();

  emit(id: string, message: string, at = new Date()): void {
    this.byId.set(id, { id, message, lastOccurrence: at });
  }

  list(): Warning[] {
    return [...this.byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}
