import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CommitVerifyError } from '../types.js';
import { parseAllowedSigners, parseSshTime } from './allowed-signers.js';
import { sshPublicKeyFingerprint } from './keys.js';
import { matchPattern, matchPatternList, splitPatternList } from './patterns.js';
import { generateTestKey } from './test-kit.js';
import { sshString } from './wire.js';

const FIXTURES = new URL('../../../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
const ED = generateTestKey('ed25519');
const P256 = generateTestKey('p256');
const RSA = generateTestKey('rsa2048');

function parseError(text: string, source?: string): CommitVerifyError {
  try {
    parseAllowedSigners(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(CommitVerifyError);
    return e as CommitVerifyError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('parseAllowedSigners: entries', () => {
  it('parses the fixture file (git format) with the key fingerprint ssh-keygen reports', () => {
    const [s, ...rest] = parseAllowedSigners(readFileSync(join(FIXTURES, 'ssh/allowed_signers'), 'utf8'), 'fixture');
    expect(rest).toEqual([]);
    expect(s).toMatchObject({
      principals: ['179610826+gittuf-app-test[bot]@users.noreply.github.com'],
      namespaces: ['git'],
      certAuthority: false,
      keyType: 'ssh-rsa',
      fingerprint: 'SHA256:KTrCAHHGUSCkNjanR0t4ojOiHQ4qZIQM6mkwX64b2KY',
      source: 'fixture',
      line: 1,
    });
  });

  it('skips blank lines and comments, handles CRLF, leading blanks and key comments, numbers lines from 1', () => {
    const text = [
      '# team keys',
      '',
      '   ',
      `  alice@example.com ${ED.line} alice laptop`,
      '\t# indented comment',
      `bob@example.com,carol@example.com ${P256.line}\r`,
      '',
    ].join('\n');
    const signers = parseAllowedSigners(text);
    expect(signers).toHaveLength(2);
    expect(signers[0]).toMatchObject({
      principals: ['alice@example.com'],
      keyType: 'ssh-ed25519',
      comment: 'alice laptop',
      line: 4,
      source: 'allowed_signers',
    });
    expect(signers[0]!.namespaces).toBeUndefined();
    expect(signers[0]!.validAfter).toBeUndefined();
    expect(signers[1]).toMatchObject({ principals: ['bob@example.com', 'carol@example.com'], keyType: 'ecdsa-sha2-nistp256', line: 6 });
    expect(signers[1]!.comment).toBeUndefined();
    expect(Buffer.from(signers[0]!.publicKey).equals(ED.blob)).toBe(true);
  });

  it('keeps wildcard and negated principal patterns as written', () => {
    const [s] = parseAllowedSigners(`*@example.com,!mallory@example.com,dev?@corp.example ${ED.line}`);
    expect(s!.principals).toEqual(['*@example.com', '!mallory@example.com', 'dev?@corp.example']);
  });

  it('unquotes quoted principals (which may contain blanks), still splitting on commas', () => {
    expect(parseAllowedSigners(`"alice smith@example.com,bob@example.com" ${ED.line}`)[0]!.principals).toEqual([
      'alice smith@example.com',
      'bob@example.com',
    ]);
    expect(parseAllowedSigners(`alice@example.com,"b c@example.com" namespaces="git" ${ED.line}`)[0]).toMatchObject({
      principals: ['alice@example.com', 'b c@example.com'],
      namespaces: ['git'],
    });
  });

  it('namespaces="..." is a pattern list; \\" inside is a quote', () => {
    expect(parseAllowedSigners(`a@x namespaces="git,file" ${ED.line}`)[0]!.namespaces).toEqual(['git', 'file']);
    expect(parseAllowedSigners(`a@x namespaces="g*,!file" ${ED.line}`)[0]!.namespaces).toEqual(['g*', '!file']);
    expect(parseAllowedSigners(`a@x namespaces="we\\"ird" ${ED.line}`)[0]!.namespaces).toEqual(['we"ird']);
    // Present but empty: no namespace is permitted (OpenSSH matches nothing against an empty list).
    expect(parseAllowedSigners(`a@x namespaces="" ${ED.line}`)[0]!.namespaces).toEqual([]);
  });

  it('valid-after / valid-before accept every OpenSSH time form; no suffix means UTC', () => {
    const cases: [string, string][] = [
      ['20240131', '2024-01-31T00:00:00.000Z'],
      ['20240131Z', '2024-01-31T00:00:00.000Z'],
      ['20240131z', '2024-01-31T00:00:00.000Z'],
      ['20240131UTC', '2024-01-31T00:00:00.000Z'],
      ['202401311530', '2024-01-31T15:30:00.000Z'],
      ['202401311530Z', '2024-01-31T15:30:00.000Z'],
      ['20240131153045', '2024-01-31T15:30:45.000Z'],
      ['20240131153045Z', '2024-01-31T15:30:45.000Z'],
      ['20240229', '2024-02-29T00:00:00.000Z'],
    ];
    for (const [value, iso] of cases) {
      expect(parseAllowedSigners(`a@x valid-after="${value}" ${ED.line}`)[0]!.validAfter!.toISOString()).toBe(iso);
      expect(parseAllowedSigners(`a@x valid-before="${value}" ${ED.line}`)[0]!.validBefore!.toISOString()).toBe(iso);
    }
  });

  it('cert-authority and all options together; option keywords are case-insensitive', () => {
    const [s] = parseAllowedSigners(
      `*@example.com CERT-Authority,Namespaces="git",VALID-AFTER="20240101",valid-before="20250101Z" ${ED.line} ca`,
    );
    expect(s).toMatchObject({ certAuthority: true, namespaces: ['git'], comment: 'ca' });
    expect(s!.validAfter!.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(s!.validBefore!.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(parseAllowedSigners(`a@x cert-authority ${ED.line}`)[0]!.certAuthority).toBe(true);
    expect(parseAllowedSigners(`a@x ${ED.line}`)[0]!.certAuthority).toBe(false);
  });

  it('option values may contain blanks inside quotes', () => {
    expect(parseAllowedSigners(`a@x namespaces="git, file" ${ED.line}`)[0]!.namespaces).toEqual(['git', ' file']);
  });

  it('accepts rsa-sha2-* as a key type name for an ssh-rsa key, like OpenSSH', () => {
    const b64 = RSA.line.split(' ')[1];
    expect(parseAllowedSigners(`a@x rsa-sha2-512 ${b64}`)[0]!.keyType).toBe('ssh-rsa');
  });

  it('accepts key types it cannot verify (they never match a signature)', () => {
    const sk = Buffer.concat([sshString('sk-ssh-ed25519@openssh.com'), sshString(Buffer.alloc(32, 7)), sshString('ssh:')]);
    expect(parseAllowedSigners(`a@x sk-ssh-ed25519@openssh.com ${sk.toString('base64')}`)[0]!.keyType).toBe('sk-ssh-ed25519@openssh.com');
  });
});

describe('parseAllowedSigners: errors name source and line', () => {
  const good = `ok@example.com ${ED.line}`;
  const cases: [string, string | RegExp][] = [
    ['alice@example.com', /missing key/],
    ['alice@example.com   ', /missing key/],
    [`alice@example.com namespaces="git"`, /missing key after options/],
    [`alice@example.com foo="bar" ${ED.line}`, /unknown option "foo=\\"bar\\""/],
    [`alice@example.com namespaces="git",nope ${ED.line}`, /unknown option "nope"/],
    [`alice@example.com namespaces="git", ${ED.line}`, /options end with a comma/],
    [`alice@example.com valid-after=20240101 ${ED.line}`, /valid-after value must be double-quoted/],
    [`alice@example.com namespaces="git ${ED.line}`, /unterminated quote/],
    [`alice@example.com namespaces="git",namespaces="file" ${ED.line}`, /multiple "namespaces"/],
    [`alice@example.com valid-after="20240101",valid-after="20240102" ${ED.line}`, /multiple "valid-after"/],
    [`alice@example.com valid-before="20240101",valid-before="20240102" ${ED.line}`, /multiple "valid-before"/],
    [`alice@example.com valid-after="2024011" ${ED.line}`, /invalid "valid-after" time "2024011"/],
    [`alice@example.com valid-after="20241301" ${ED.line}`, /invalid "valid-after" time/],
    [`alice@example.com valid-after="20230229" ${ED.line}`, /invalid "valid-after" time/],
    [`alice@example.com valid-after="202401012400" ${ED.line}`, /invalid "valid-after" time/],
    [`alice@example.com valid-before="20240101123060" ${ED.line}`, /invalid "valid-before" time/],
    [`alice@example.com valid-before="2024-01-01" ${ED.line}`, /invalid "valid-before" time/],
    [`alice@example.com valid-before="Z" ${ED.line}`, /invalid "valid-before" time/],
    [`alice@example.com valid-after="19700101Z" ${ED.line}`, /invalid "valid-after" time/],
    [`alice@example.com valid-after="19600101" ${ED.line}`, /invalid "valid-after" time/],
    [`alice@example.com valid-after="20250101",valid-before="20240101" ${ED.line}`, /"valid-before" is not after "valid-after"/],
    [`alice@example.com valid-after="20240101",valid-before="20240101" ${ED.line}`, /"valid-before" is not after "valid-after"/],
    [`alice@example.com ssh-ed25519 not*base64`, /invalid key: key is not valid base64/],
    [`alice@example.com ssh-ed25519 ${ED.line.split(' ')[1]!.slice(0, -4)}`, /invalid key/],
    [`alice@example.com ssh-rsa ${ED.line.split(' ')[1]}`, /declared as ssh-rsa but the blob is "ssh-ed25519"/],
    [`alice@example.com ecdsa-sha2-nistp384 ${P256.line.split(' ')[1]}`, /declared as ecdsa-sha2-nistp384/],
    [
      `alice@example.com ssh-ed25519 ${Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(31))]).toString('base64')}`,
      /not 32/,
    ],
    [`alice@example.com ssh-foo AAAA`, /unknown option "ssh-foo"/],
    [`"alice@example.com ${ED.line}`, /unterminated quote/],
    [`"alice"@example.com ${ED.line}`, /after the closing quote/],
    [`"" ${ED.line}`, /empty principals/],
    [`alice@example.com\0 ${ED.line}`, /NUL/],
  ];
  for (const [line, what] of cases) {
    it(`rejects ${JSON.stringify(line.length > 70 ? `${line.slice(0, 67)}...` : line)}`, () => {
      const e = parseError([good, '# comment', '', line, good].join('\n'), 'policy/team.allowed_signers');
      expect(e.code).toBe('ALLOWED_SIGNERS_INVALID');
      expect(e.message).toMatch(/^policy\/team\.allowed_signers:4: /);
      expect(e.message).toMatch(what);
    });
  }

  it('defaults the source name to allowed_signers and counts CRLF lines', () => {
    const e = parseError(`${good}\r\nbad-line-without-key\r\n`);
    expect(e.message).toMatch(/^allowed_signers:2: missing key/);
  });
});

describe('parseSshTime', () => {
  it('parses OpenSSH absolute times as UTC seconds', () => {
    expect(parseSshTime('20240101')).toBe(Date.UTC(2024, 0, 1) / 1000);
    expect(parseSshTime('20000229235959Z')).toBe(Date.UTC(2000, 1, 29, 23, 59, 59) / 1000);
    expect(parseSshTime('00500101Z')).toBe(new Date('0050-01-01T00:00:00Z').getTime() / 1000);
  });
  it('refuses malformed and impossible dates', () => {
    for (const s of [
      '',
      'Z',
      'UTC',
      '2024',
      '202401011',
      '2024010112345',
      '21000229',
      '20240431',
      '20240101126000',
      '+0240101',
      '2024 101',
    ]) {
      expect(parseSshTime(s), s).toBeNull();
    }
  });
});

describe('OpenSSH pattern lists', () => {
  it('matches * and ? over the whole string, case-sensitively', () => {
    expect(matchPattern('alice@example.com', '*@example.com')).toBe(true);
    expect(matchPattern('alice@example.com', 'alice@*')).toBe(true);
    expect(matchPattern('alice@example.com', 'a?ice@example.com')).toBe(true);
    expect(matchPattern('alice@example.com', '*')).toBe(true);
    expect(matchPattern('', '*')).toBe(true);
    expect(matchPattern('', '')).toBe(true);
    expect(matchPattern('a', '')).toBe(false);
    expect(matchPattern('alice@example.com', 'Alice@example.com')).toBe(false);
    expect(matchPattern('alice@example.com.evil', '*@example.com')).toBe(false);
    expect(matchPattern('alice@example.com', '*@*.com')).toBe(true);
    expect(matchPattern('aXbXc', '*X*X*')).toBe(true);
    expect(matchPattern('aXb', '*X*X*')).toBe(false);
    expect(matchPattern('abc', 'a?')).toBe(false);
    expect(matchPattern(`${'a'.repeat(5000)}b`, '*a*a*a*a*a*c')).toBe(false);
  });
  it('splits like OpenSSH and lets a negated match veto', () => {
    expect(splitPatternList('a,b')).toEqual(['a', 'b']);
    expect(splitPatternList('a,')).toEqual(['a']);
    expect(splitPatternList(',a')).toEqual(['', 'a']);
    expect(splitPatternList('')).toEqual([]);
    expect(matchPatternList('bob@x', ['*@x', '!mallory@x'])).toBe(1);
    expect(matchPatternList('mallory@x', ['*@x', '!mallory@x'])).toBe(-1);
    expect(matchPatternList('mallory@x', ['!mallory@x', '*@x'])).toBe(-1);
    expect(matchPatternList('eve@y', ['*@x'])).toBe(0);
    expect(matchPatternList('eve@y', [])).toBe(0);
  });
  it('matches bytes: ? is one UTF-8 byte, as in OpenSSH', () => {
    expect(matchPattern('é', '?')).toBe(true);
    expect(matchPatternList('é@x', ['?@x'])).toBe(0);
    expect(matchPatternList('é@x', ['??@x'])).toBe(1);
  });
  it('treats a sub-pattern of 1023+ bytes as "no match" for the whole list, like OpenSSH', () => {
    const long = 'a'.repeat(1023);
    expect(matchPatternList(long, [long])).toBe(0);
    expect(matchPatternList('x', ['x', long])).toBe(0);
    expect(matchPatternList('a'.repeat(1022), ['a'.repeat(1022)])).toBe(1);
  });
});

describe('sshPublicKeyFingerprint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-fp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('equals `ssh-keygen -lf` for every supported key type', () => {
    const specs: [string, string[]][] = [
      ['ed25519', ['-t', 'ed25519']],
      ['p256', ['-t', 'ecdsa', '-b', '256']],
      ['p384', ['-t', 'ecdsa', '-b', '384']],
      ['p521', ['-t', 'ecdsa', '-b', '521']],
      ['rsa', ['-t', 'rsa', '-b', '2048']],
    ];
    for (const [name, args] of specs) {
      const path = join(dir, name);
      execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `${name} key`, '-f', path]);
      const pub = readFileSync(`${path}.pub`, 'utf8');
      const expected = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1];
      expect(sshPublicKeyFingerprint(pub), name).toBe(expected);
    }
  });

  it('equals `ssh-keygen -lf` for keys built by node:crypto too (our blob encoding is canonical)', () => {
    for (const key of [ED, P256, RSA, generateTestKey('p521')]) {
      const path = join(dir, `node-${key.kind}.pub`);
      writeFileSync(path, `${key.line}\n`);
      expect(sshPublicKeyFingerprint(key.line)).toBe(execFileSync('ssh-keygen', ['-lf', path], { encoding: 'utf8' }).split(' ')[1]);
    }
  });

  it('fingerprints a non-canonical encoding like its canonical one (mpint with a redundant zero byte)', () => {
    const blob = Buffer.from(RSA.line.split(' ')[1]!, 'base64');
    // e = 65537 is encoded as 00 00 00 03 01 00 01 right after the type string; add a leading zero byte.
    const typeEnd = 4 + 'ssh-rsa'.length;
    const e = blob.subarray(typeEnd + 4, typeEnd + 4 + blob.readUInt32BE(typeEnd));
    const padded = Buffer.concat([
      blob.subarray(0, typeEnd),
      sshString(Buffer.concat([Buffer.from([0]), e])),
      blob.subarray(typeEnd + 4 + e.length),
    ]);
    expect(sshPublicKeyFingerprint(`ssh-rsa ${padded.toString('base64')}`)).toBe(sshPublicKeyFingerprint(RSA.line));
  });

  it('throws SSH_KEY_INVALID for anything that is not a public key line', () => {
    for (const bad of ['', 'ssh-ed25519', 'ssh-ed25519 AAAA', 'hello world', `ssh-rsa ${ED.line.split(' ')[1]}`]) {
      expect(() => sshPublicKeyFingerprint(bad)).toThrow(expect.objectContaining({ code: 'SSH_KEY_INVALID' }) as Error);
    }
  });
});

describe('parseAllowedSigners: fuzz', () => {
  it('random lines either parse or throw ALLOWED_SIGNERS_INVALID, nothing else', () => {
    // mulberry32: deterministic, so a failure reproduces.
    let seed = 0x5eed;
    const rnd = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const parts = [
      'a@x',
      '*',
      ',',
      ' ',
      '\t',
      '"',
      '\\"',
      '=',
      'namespaces',
      'valid-after',
      'valid-before',
      'cert-authority',
      '"20240101"',
      '"git"',
      ED.line,
      P256.line,
      'ssh-ed25519',
      'AAAA',
      '#',
      '\r',
      '\n',
      '!',
      'é',
      '\0',
    ];
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      let line = '';
      const n = 1 + rnd(8);
      for (let j = 0; j < n; j++) line += parts[rnd(parts.length)];
      try {
        parseAllowedSigners(line);
        parsed++;
      } catch (e) {
        expect(e).toBeInstanceOf(CommitVerifyError);
        expect((e as CommitVerifyError).code).toBe('ALLOWED_SIGNERS_INVALID');
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});
