/**
 * The GitHub API emulator as a process, to try "Connect to GitHub" without GitHub:
 *   node shared/dev/github-emulator/dist/main.js --app-id 1 --public-key app.pub.pem --installation 50:demo/app=500
 * (repeat --installation; `<installation id>:<owner>/<name>=<repository id>,…`). Prints its URL; check runs and
 * statuses are at GET /_emulator/state.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startGitHubEmulator, type EmulatedInstallation } from './api.js';

const { values } = parseArgs({
  options: {
    'app-id': { type: 'string' },
    'public-key': { type: 'string' },
    installation: { type: 'string', multiple: true, default: [] },
  },
});
const fail = (m: string): never => {
  process.stderr.write(`github-emulator: ${m}\n`);
  process.exit(2);
};
const appId = Number(values['app-id'] ?? fail('--app-id is required'));
const publicKey = readFileSync(values['public-key'] ?? fail('--public-key FILE is required'), 'utf8');
const installations: EmulatedInstallation[] = values.installation.map((spec) => {
  const m = /^(\d+):(.+)$/.exec(spec) ?? fail(`--installation ${spec}: expected <id>:<owner>/<name>=<repo id>,…`);
  return {
    id: Number(m[1]),
    account: m[2]!.split('/')[0] ?? '',
    repositories: m[2]!.split(',').map((r) => {
      const rm = /^([^/]+)\/([^=]+)=(\d+)$/.exec(r) ?? fail(`--installation ${spec}: bad repository ${r}`);
      return { owner: rm[1]!, name: rm[2]!, id: Number(rm[3]) };
    }),
  };
});
const emulator = await startGitHubEmulator({ appId, appPublicKey: publicKey, installations });
process.stdout.write(`GitHub API emulator: ${emulator.url}  (state: ${emulator.url}/_emulator/state)\n`);
const stop = () => void emulator.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
