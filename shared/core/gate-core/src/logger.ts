/**
 * What the gate's core logs through: pino's Logger satisfies it, and a core package names no logging library.
 * Messages are constant strings; fields carry the data (`err` for errors).
 */
export interface GateLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}
