import { runConformanceCli } from '@gitops-gate/bundle-verify';
import { CommitVerifyError } from '@gitops-gate/commit-verify';
import { PolicyError } from '@gitops-gate/policy';
import { AUDIT_USAGE, auditCommand } from './audit.js';
import { UsageError, type Io } from './io.js';
import { VERIFY_COMMIT_USAGE, verifyCommitCommand } from './verify-commit.js';
import { WEBHOOK_USAGE, webhookCommand } from './webhook.js';

const VERIFY_BUNDLE_USAGE =
  'usage: gitops-gate verify-bundle --bundle FILE (--certificate-identity ID --certificate-oidc-issuer ISS | --key FILE) [--trusted-root FILE] ARTIFACT';

const USAGE = `usage: gitops-gate <command> [flags]

commands:
  verify-commit   verify a commit's signature (gitsign, SSH, GPG) against signers or a policy
  verify-bundle   verify a Sigstore bundle (Sigstore conformance protocol)
  audit           query the gate's decisions and check the audit chain
  webhook push    send a signed GitHub push delivery for a branch head

${VERIFY_COMMIT_USAGE}
${VERIFY_BUNDLE_USAGE}
${AUDIT_USAGE}
${WEBHOOK_USAGE}`;

const SUBCOMMAND_USAGE = new Map<string, string>([
  ['verify-commit', VERIFY_COMMIT_USAGE],
  ['verify-bundle', VERIFY_BUNDLE_USAGE],
  ['audit', AUDIT_USAGE],
  ['webhook', WEBHOOK_USAGE],
]);

/** `--help`/`-h` anywhere before a `--` asks for usage (a flag value that is literally `-h` is not worth a special case). */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Exit codes: 0 verified/ok, 1 not verified (or tampering found), 2 bad invocation or input. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  const usage = command === undefined ? undefined : SUBCOMMAND_USAGE.get(command);
  if (usage !== undefined && asksForHelp(rest)) {
    // Asked for, so stdout and success: `gitops-gate audit --help | less` works.
    io.stdout.write(`${usage}\n`);
    return 0;
  }
  try {
    switch (command) {
      case 'verify-commit':
        return await verifyCommitCommand(rest, io);
      case 'verify-bundle':
        return await runConformanceCli(['verify-bundle', ...rest], {
          stdout: (l) => io.stdout.write(`${l}\n`),
          stderr: (l) => io.stderr.write(`${l}\n`),
        });
      case 'audit':
        return await auditCommand(rest, io);
      case 'webhook':
        return await webhookCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        io.stderr.write(`gitops-gate: unknown command ${command}\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    // Bad input gets one line naming what is wrong; only genuine bugs would show more.
    if (
      err instanceof UsageError ||
      err instanceof CommitVerifyError ||
      err instanceof PolicyError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr.write(`gitops-gate ${command}: ${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof SyntaxError) {
      io.stderr.write(`gitops-gate ${command}: invalid JSON: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(`gitops-gate ${command}: internal error: ${(err as Error).message}\n`);
    return 3;
  }
}
