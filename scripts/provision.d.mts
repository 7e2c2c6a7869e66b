// Types of scripts/provision.mjs (plain JavaScript: it runs before the build), for its tests.
export interface Requirement {
  pkg: string;
  command?: string;
  file?: string;
  why: string;
}
export interface Probes {
  hasCommand(cmd: string): boolean;
  hasFile(path: string): boolean;
  isRoot(): boolean;
  hasApt(): boolean;
}
export type Decision = { action: 'ok'; message: string } | { action: 'install' | 'fail'; packages: string[]; message: string };
export const REQUIREMENTS: Requirement[];
export function systemProbes(): Probes;
export function missingPackages(probes: Probes, requirements?: Requirement[]): string[];
export function decide(input: { missing: string[]; isRoot: boolean; hasApt: boolean; checkOnly?: boolean }): Decision;
export function provision(options?: {
  probes?: Probes;
  run?: (cmd: string, args: string[], env: Record<string, string | undefined>) => void;
  log?: (line: string) => void;
  checkOnly?: boolean;
}): number;
