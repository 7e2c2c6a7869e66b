// Image verification end to end: a real registry (Debian's docker-registry on loopback), material pushed the way
// cosign and actions/attest-build-provenance publish it, signed by a private Sigstore (mock Fulcio/Rekor on loopback
// driven by the real @sigstore/sign clients), verified by bundle-verify against that Sigstore's trusted root.
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBundleTrust, createBundleVerifier } from '@gitops-gate/bundle-verify';
import {
  getTestManifest,
  pushCosignAttestation,
  pushCosignSignature,
  pushReferrerBundle,
  pushTestImage,
  simpleSigningPayload,
  startTestRegistry,
} from '@gitops-gate/testing';
import type { PushedImage, TestRegistry } from '@gitops-gate/testing';
import { discoverSigstoreMaterial } from './discover.js';
import { createRegistryClient } from './registry.js';
import type { RegistryClient } from './registry.js';
import {
  GITHUB_ISSUER,
  cosignAttestationFromBundle,
  cosignSignStatement,
  cosignSignatureFromBundle,
  slsaV02Statement,
  slsaV1Statement,
  startPrivateSigstore,
} from './testing/private-sigstore.js';
import type { PrivateSigstore, WorkflowIdentity } from './testing/private-sigstore.js';
import { createImageVerifier } from './verify-image.js';
import type { ImageRequirement, ImageVerifier } from './verify-image.js';

const WORKFLOW = 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main';
const COMMIT = 'c0ffee0000000000000000000000000000000001';
const OTHER_COMMIT = 'badc0de000000000000000000000000000000002';
const SOURCE = { repository: 'https://github.com/org/app.git', branches: ['main'] };
const ID: WorkflowIdentity = {
  san: WORKFLOW,
  sha: COMMIT,
  jobWorkflowRef: 'org/app/.github/workflows/release.yml@refs/heads/main',
  ref: 'refs/heads/main',
};
const GENERATOR_REF = 'slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0';
const GENERATOR = `https://github.com/${GENERATOR_REF}`;

let reg: TestRegistry;
let sigstore: PrivateSigstore;
let registry: RegistryClient;
let verifier: ImageVerifier;
let counter = 0;

beforeAll(async () => {
  [reg, sigstore] = await Promise.all([startTestRegistry(), startPrivateSigstore()]);
  registry = createRegistryClient({ insecureHosts: [reg.url] });
  verifier = createImageVerifier({ registry, bundleVerifier: createBundleVerifier(createBundleTrust(sigstore.trustedRoot)) });
});
afterAll(async () => {
  await reg?.stop();
  await sigstore?.close();
});

async function freshImage(): Promise<PushedImage & { repo: string }> {
  const repo = `org/app${++counter}`;
  return { ...(await pushTestImage(reg.url, repo)), repo };
}

const keyless = (img: PushedImage, over: Partial<ImageRequirement> = {}): ImageRequirement => ({
  repository: img.image,
  keyless: [{ identity: WORKFLOW, issuer: GITHUB_ISSUER }],
  requireProvenance: false,
  ...over,
});

async function pushLegacySignature(img: PushedImage & { repo: string }, id: WorkflowIdentity = ID, forDigest = img.digest): Promise<void> {
  const payload = simpleSigningPayload(img.image, forDigest);
  const pieces = cosignSignatureFromBundle(await sigstore.signMessage(payload, id));
  await pushCosignSignature(reg.url, img.repo, img.digest, { payload, ...pieces });
}

async function pushLegacyAttestation(img: PushedImage & { repo: string }, statement: object, id: WorkflowIdentity = ID): Promise<void> {
  const pieces = cosignAttestationFromBundle(await sigstore.signStatement(statement, id));
  await pushCosignAttestation(reg.url, img.repo, img.digest, {
    ...pieces,
    predicateType: (statement as { predicateType: string }).predicateType,
  });
}

async function pushKeyedLegacySignature(img: PushedImage & { repo: string }, key: KeyObject, at: Date): Promise<void> {
  const payload = simpleSigningPayload(img.image, img.digest);
  const pieces = cosignSignatureFromBundle(await sigstore.signMessageWithKey(payload, key, { at }));
  await pushCosignSignature(reg.url, img.repo, img.digest, { payload, ...pieces });
}

describe('accepted', () => {
  it('cosign v3 keyless signature as an OCI referrer (read through the referrers tag schema)', async () => {
    const img = await freshImage();
    await pushReferrerBundle(reg.url, img.repo, img.digest, await sigstore.signStatement(cosignSignStatement(img.digest), ID));
    const found = await discoverSigstoreMaterial(registry, img.image, img.digest);
    expect(found.referrersVia).toBe('tag-schema');
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: true, image: img.image, digest: img.digest });
    expect(v.signatures).toEqual([
      expect.objectContaining({
        source: 'referrer',
        kind: 'attestation',
        ok: true,
        predicateType: 'https://sigstore.dev/cosign/sign/v1',
        signer: expect.objectContaining({ identity: WORKFLOW, issuer: GITHUB_ISSUER, sourceRepositoryDigest: COMMIT }),
      }),
    ]);
    expect(v.provenance).toBeUndefined();
  });

  it('a message-signature bundle over the manifest bytes, as a referrer', async () => {
    const img = await freshImage();
    await pushReferrerBundle(reg.url, img.repo, img.digest, await sigstore.signMessage(img.manifest, ID));
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: true, signatures: [{ source: 'referrer', kind: 'signature', ok: true }] });
  });

  it('actions/attest-build-provenance layout: SLSA v1 provenance referrer, provenance required, source commit extracted', async () => {
    const img = await freshImage();
    const bundle = await sigstore.signStatement(slsaV1Statement({ digest: img.digest, name: img.image, commit: COMMIT }), ID);
    await pushReferrerBundle(reg.url, img.repo, img.digest, bundle, {
      annotations: {
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1',
      },
    });
    const v = await verifier.verifyImage({
      image: img.image,
      digest: img.digest,
      requirement: keyless(img, { requireProvenance: true }),
      source: SOURCE,
    });
    expect(v).toMatchObject({
      ok: true,
      sourceCommit: COMMIT,
      provenance: {
        predicateType: 'https://slsa.dev/provenance/v1',
        builderId: 'https://github.com/actions/runner/github-hosted',
        sourceRepository: 'https://github.com/org/app',
        sourceCommit: COMMIT,
        signerIdentity: WORKFLOW,
        issuer: GITHUB_ISSUER,
      },
    });
  });

  it('cosign legacy signature (sha256-<hex>.sig, simple signing, certificate and Rekor SET in annotations)', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({
      ok: true,
      signatures: [{ source: 'cosign-signature', kind: 'signature', ok: true, signer: { identity: WORKFLOW } }],
    });
    expect(v.signatures[0]!.location).toMatch(/^sha256-[0-9a-f]{64}\.sig layer sha256:/);
  });

  it('cosign legacy signature + SLSA v1 attestation (.att): provenance verified, source commit extracted', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: COMMIT }));
    const v = await verifier.verifyImage({
      image: img.image,
      digest: img.digest,
      requirement: keyless(img, { requireProvenance: true }),
      source: SOURCE,
    });
    expect(v).toMatchObject({
      ok: true,
      sourceCommit: COMMIT,
      provenance: { predicateType: 'https://slsa.dev/provenance/v1', sourceCommit: COMMIT },
    });
    expect(v.signatures.map((s) => [s.source, s.ok])).toEqual([
      ['cosign-signature', true],
      ['cosign-attestation', true],
    ]);
  });

  it('slsa-github-generator layout: SLSA v0.2 attestation by the reusable generator workflow; builder = SAN', async () => {
    const img = await freshImage();
    const gen: WorkflowIdentity = {
      san: GENERATOR,
      sha: COMMIT,
      jobWorkflowRef: GENERATOR_REF,
      // A reusable workflow's certificate names the calling repository and ref, not the generator's.
      repository: 'org/app',
      ref: 'refs/heads/main',
    };
    await pushLegacyAttestation(img, slsaV02Statement({ digest: img.digest, builderId: GENERATOR, commit: COMMIT }), gen);
    const requirement: ImageRequirement = {
      repository: img.image,
      keyless: [{ identity: GENERATOR, issuer: GITHUB_ISSUER }],
      requireProvenance: true,
    };
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement, source: SOURCE });
    expect(v).toMatchObject({
      ok: true,
      sourceCommit: COMMIT,
      provenance: {
        predicateType: 'https://slsa.dev/provenance/v0.2',
        builderId: GENERATOR,
        signerIdentity: GENERATOR,
        sourceRepository: 'https://github.com/org/app',
      },
    });
  });

  it('identityRegExp rules must match the whole SAN', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    const re = (identityRegExp: string) => keyless(img, { keyless: [{ identityRegExp, issuer: GITHUB_ISSUER }] });
    expect(
      (
        await verifier.verifyImage({
          image: img.image,
          digest: img.digest,
          requirement: re('https://github\\.com/org/app/\\.github/workflows/[^/]+@refs/heads/main'),
          source: SOURCE,
        })
      ).ok,
    ).toBe(true);
    for (const bad of ['https://github\\.com/org/app', 'org/app', 'https://github\\.com/org/ap']) {
      const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: re(bad), source: SOURCE });
      expect(v, bad).toMatchObject({ ok: false, code: 'SIGNATURE_UNVERIFIED', signatures: [{ code: 'IDENTITY_MISMATCH' }] });
    }
  });

  it('only the first maxItems layers or referrers are looked at; the rest is reported', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    await pushLegacySignature(img);
    const capped = createImageVerifier({
      registry,
      bundleVerifier: createBundleVerifier(createBundleTrust(sigstore.trustedRoot)),
      maxItems: 1,
    });
    const v = await capped.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v.ok).toBe(true);
    expect(v.signatures.map((s) => [s.ok, s.code])).toEqual([
      [false, 'TOO_MANY'],
      [true, undefined],
    ]);
  });
});

describe('keys with rotation windows', () => {
  const keyA = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyB = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (k: { publicKey: KeyObject }) => k.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const ROTATION = '2026-06-01T00:00:00Z';
  const BEFORE = new Date('2026-03-01T12:00:00Z');
  const AFTER = new Date('2026-08-01T12:00:00Z');
  const rotation = (img: PushedImage, revokeA = false): ImageRequirement => ({
    repository: img.image,
    keys: [
      { publicKeyPem: pem(keyA), validUntil: ROTATION, revoked: revokeA },
      { publicKeyPem: pem(keyB), validFrom: ROTATION },
    ],
    requireProvenance: false,
  });

  it('a key counts for signatures logged inside its window', async () => {
    const img = await freshImage();
    await pushKeyedLegacySignature(img, keyA.privateKey, BEFORE);
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: rotation(img), source: SOURCE });
    expect(v).toMatchObject({
      ok: true,
      signatures: [{ source: 'cosign-signature', ok: true, signer: { signedAt: BEFORE.toISOString() } }],
    });
    expect(v.signatures[0]!.signer?.keyId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the retired key is refused after the rotation; the new key is accepted', async () => {
    const img = await freshImage();
    await pushKeyedLegacySignature(img, keyA.privateKey, AFTER);
    expect(await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: rotation(img), source: SOURCE })).toMatchObject({
      ok: false,
      code: 'SIGNATURE_UNVERIFIED',
      signatures: [{ ok: false, code: 'KEY_OUTSIDE_VALIDITY' }],
    });
    const img2 = await freshImage();
    await pushReferrerBundle(
      reg.url,
      img2.repo,
      img2.digest,
      await sigstore.signMessageWithKey(img2.manifest, keyB.privateKey, { at: AFTER }),
    );
    expect(
      await verifier.verifyImage({ image: img2.image, digest: img2.digest, requirement: rotation(img2), source: SOURCE }),
    ).toMatchObject({ ok: true });
  });

  it('a revoked key counts for nothing', async () => {
    const img = await freshImage();
    await pushKeyedLegacySignature(img, keyA.privateKey, BEFORE);
    expect(
      await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: rotation(img, true), source: SOURCE }),
    ).toMatchObject({
      ok: false,
      code: 'SIGNATURE_UNVERIFIED',
      signatures: [{ code: 'SIGNATURE_INVALID' }],
    });
  });

  it('a key-signed SLSA provenance does not satisfy requireProvenance (no workflow identity)', async () => {
    const img = await freshImage();
    const b = await sigstore.signStatementWithKey(slsaV1Statement({ digest: img.digest, commit: COMMIT }), keyB.privateKey, { at: AFTER });
    await pushCosignAttestation(reg.url, img.repo, img.digest, cosignAttestationFromBundle(b));
    const v = await verifier.verifyImage({
      image: img.image,
      digest: img.digest,
      requirement: { ...rotation(img), requireProvenance: true },
      source: SOURCE,
    });
    expect(v).toMatchObject({
      ok: false,
      code: 'PROVENANCE_UNVERIFIED',
      signatures: [{ ok: true, predicateType: 'https://slsa.dev/provenance/v1' }],
    });
    expect(v.sourceCommit).toBeUndefined();
  });
});

describe('rejected', () => {
  it('no signatures at all', async () => {
    const img = await freshImage();
    expect(await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE })).toMatchObject({
      ok: false,
      code: 'NO_SIGNATURES',
      signatures: [],
    });
  });

  it('a signature made for another digest (legacy layout and referrer)', async () => {
    const img = await freshImage();
    const other = await freshImage();
    // A valid .sig for `other`, copied under this image's .sig tag.
    await pushLegacySignature(img, ID, other.digest);
    let v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({
      ok: false,
      code: 'SIGNATURE_UNVERIFIED',
      signatures: [{ source: 'cosign-signature', code: 'SIGNED_DIGEST_MISMATCH' }],
    });

    const img2 = await freshImage();
    await pushReferrerBundle(reg.url, img2.repo, img2.digest, await sigstore.signStatement(cosignSignStatement(other.digest), ID));
    await pushReferrerBundle(reg.url, img2.repo, img2.digest, await sigstore.signMessage(other.manifest, ID));
    v = await verifier.verifyImage({ image: img2.image, digest: img2.digest, requirement: keyless(img2), source: SOURCE });
    expect(v).toMatchObject({ ok: false, code: 'SIGNATURE_UNVERIFIED' });
    expect(v.signatures.map((s) => s.code)).toEqual(['SUBJECT_MISMATCH', 'ARTIFACT_MISMATCH']);
  });

  it('a referrer whose manifest names another subject is not used', async () => {
    const img = await freshImage();
    const other = await freshImage();
    const bundle = await sigstore.signStatement(cosignSignStatement(img.digest), ID);
    await pushReferrerBundle(reg.url, img.repo, img.digest, bundle, {
      subjectOverride: { digest: other.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: other.size },
    });
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: false, code: 'NO_SIGNATURES', signatures: [{ source: 'referrer', code: 'SUBJECT_MISMATCH' }] });
  });

  it('provenance whose subject is another digest', async () => {
    const img = await freshImage();
    const other = await freshImage();
    await pushLegacySignature(img);
    await pushLegacyAttestation(img, slsaV1Statement({ digest: other.digest, commit: COMMIT }));
    const v = await verifier.verifyImage({
      image: img.image,
      digest: img.digest,
      requirement: keyless(img, { requireProvenance: true }),
      source: SOURCE,
    });
    expect(v).toMatchObject({ ok: false, code: 'PROVENANCE_UNVERIFIED' });
    expect(v.signatures.find((s) => s.source === 'cosign-attestation')).toMatchObject({
      ok: false,
      code: 'SUBJECT_MISMATCH',
      predicateType: 'https://slsa.dev/provenance/v1',
    });
  });

  it('untrusted workflow identities: prefix, extension, substring or another repository is no match', async () => {
    const sans = [
      'https://github.com/org/app/.github/workflows/release.yml',
      `${WORKFLOW}-evil`,
      'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main-evil',
      'https://github.com/org/app-evil/.github/workflows/release.yml@refs/heads/main',
      'https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main',
    ];
    const img = await freshImage();
    for (const san of sans) await pushLegacySignature(img, { ...ID, san });
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v.ok).toBe(false);
    expect(v.code).toBe('SIGNATURE_UNVERIFIED');
    expect(v.signatures.map((s) => s.code)).toEqual(sans.map(() => 'IDENTITY_MISMATCH'));
  });

  it('the right workflow with the wrong OIDC issuer', async () => {
    const img = await freshImage();
    await pushLegacySignature(img, { ...ID, issuer: 'https://accounts.google.com' });
    await pushReferrerBundle(
      reg.url,
      img.repo,
      img.digest,
      await sigstore.signStatement(cosignSignStatement(img.digest), { ...ID, issuer: 'https://token.actions.githubusercontent.com.evil' }),
    );
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: false, code: 'SIGNATURE_UNVERIFIED' });
    expect(v.signatures.map((s) => s.code)).toEqual(['IDENTITY_MISMATCH', 'IDENTITY_MISMATCH']);
  });

  it('a signature from another Sigstore (not in the trusted root)', async () => {
    const foreign = await startPrivateSigstore();
    try {
      const img = await freshImage();
      const payload = simpleSigningPayload(img.image, img.digest);
      await pushCosignSignature(reg.url, img.repo, img.digest, {
        payload,
        ...cosignSignatureFromBundle(await foreign.signMessage(payload, ID)),
      });
      const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
      expect(v).toMatchObject({ ok: false, code: 'SIGNATURE_UNVERIFIED', signatures: [{ code: 'TLOG_UNTRUSTED' }] });
    } finally {
      await foreign.close();
    }
  });

  it('legacy signatures without a Rekor entry, or with an altered signature', async () => {
    const img = await freshImage();
    const payload = simpleSigningPayload(img.image, img.digest);
    const pieces = cosignSignatureFromBundle(await sigstore.signMessage(payload, ID));
    await pushCosignSignature(reg.url, img.repo, img.digest, {
      payload,
      signatureBase64: pieces.signatureBase64,
      certificatePem: pieces.certificatePem!,
    });
    const sig = Buffer.from(pieces.signatureBase64, 'base64');
    sig[sig.length - 1]! ^= 1;
    await pushCosignSignature(reg.url, img.repo, img.digest, { payload, ...pieces, signatureBase64: sig.toString('base64') });
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: false, code: 'SIGNATURE_UNVERIFIED' });
    expect(v.signatures.map((s) => s.code)).toEqual(['TLOG_MISSING', 'TLOG_BODY_MISMATCH']);
  });

  it('provenance naming a different commit than the certificate extension (v1 and v0.2)', async () => {
    const img = await freshImage();
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: OTHER_COMMIT }));
    expect(
      await verifier.verifyImage({
        image: img.image,
        digest: img.digest,
        requirement: keyless(img, { requireProvenance: true }),
        source: SOURCE,
      }),
    ).toMatchObject({
      ok: false,
      code: 'PROVENANCE_COMMIT_MISMATCH',
    });
    // Fatal even when provenance is not required and another signature verifies.
    await pushLegacySignature(img);
    const v = await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE });
    expect(v).toMatchObject({ ok: false, code: 'PROVENANCE_COMMIT_MISMATCH' });
    expect(v.sourceCommit).toBeUndefined();

    const img2 = await freshImage();
    const gen: WorkflowIdentity = { san: GENERATOR, sha: COMMIT };
    await pushLegacyAttestation(img2, slsaV02Statement({ digest: img2.digest, builderId: GENERATOR, commit: OTHER_COMMIT }), gen);
    const req: ImageRequirement = { repository: img2.image, keyless: [{ identity: GENERATOR, issuer: GITHUB_ISSUER }] };
    expect(await verifier.verifyImage({ image: img2.image, digest: img2.digest, requirement: req, source: SOURCE })).toMatchObject({
      ok: false,
      code: 'PROVENANCE_COMMIT_MISMATCH',
    });
  });

  it('provenance whose builder id names another workflow than the signer', async () => {
    const img = await freshImage();
    const builderId = 'https://github.com/org/app/.github/workflows/other.yml@refs/heads/main';
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: COMMIT, builderId }));
    expect(
      await verifier.verifyImage({
        image: img.image,
        digest: img.digest,
        requirement: keyless(img, { requireProvenance: true }),
        source: SOURCE,
      }),
    ).toMatchObject({
      ok: false,
      code: 'PROVENANCE_BUILDER_MISMATCH',
    });
  });

  it('two trusted provenances naming different source commits', async () => {
    const img = await freshImage();
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: COMMIT }));
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: OTHER_COMMIT }), { ...ID, sha: OTHER_COMMIT });
    expect(
      await verifier.verifyImage({
        image: img.image,
        digest: img.digest,
        requirement: keyless(img, { requireProvenance: true }),
        source: SOURCE,
      }),
    ).toMatchObject({
      ok: false,
      code: 'PROVENANCE_CONFLICT',
    });
  });

  it('provenance required but only a signature is published', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    expect(
      await verifier.verifyImage({
        image: img.image,
        digest: img.digest,
        requirement: keyless(img, { requireProvenance: true }),
        source: SOURCE,
      }),
    ).toMatchObject({
      ok: false,
      code: 'PROVENANCE_MISSING',
    });
    // requireProvenance defaults to true.
    const { requireProvenance: _omit, ...rest } = keyless(img);
    expect(await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: rest, source: SOURCE })).toMatchObject({
      ok: false,
      code: 'PROVENANCE_MISSING',
    });
  });

  it('manifest bytes in the registry that do not match the digest (storage tampered after signing)', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    await pushLegacyAttestation(img, slsaV1Statement({ digest: img.digest, commit: COMMIT }));
    const path = reg.blobPath(img.digest);
    writeFileSync(path, readFileSync(path, 'utf8').replace('image.layer.v1.tar"', 'image.layer.v1.tar+gzip"'));
    expect(await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE })).toMatchObject({
      ok: false,
      code: 'MANIFEST_DIGEST_MISMATCH',
    });
  });

  it('a tampered signature blob is not used', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    const sigManifest = await getTestManifest(reg.url, img.repo, `${img.digest.replace(':', '-')}.sig`);
    const layer = (sigManifest!.json['layers'] as Array<{ digest: string }>)[0]!;
    writeFileSync(reg.blobPath(layer.digest), simpleSigningPayload(img.image, `sha256:${'0'.repeat(64)}`));
    expect(await verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE })).toMatchObject({
      ok: false,
      code: 'NO_SIGNATURES',
      signatures: [{ code: 'DIGEST_MISMATCH' }],
    });
  });

  it('registry 5xx is thrown as transient, for the image and for signature material', async () => {
    const img = await freshImage();
    await pushReferrerBundle(reg.url, img.repo, img.digest, await sigstore.signStatement(cosignSignStatement(img.digest), ID));
    const refs = await registry.getReferrers(img.image, img.digest);
    const referrer = await registry.getManifest(img.image, refs.manifests[0]!.digest);
    const bundleLayer = (referrer.json['layers'] as Array<{ digest: string }>)[0]!;
    const breakFile = (path: string) => {
      unlinkSync(path);
      symlinkSync(path, path); // ELOOP: distribution answers 500
    };
    breakFile(reg.blobPath(bundleLayer.digest));
    await expect(
      verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE }),
    ).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      transient: true,
    });
    breakFile(reg.blobPath(img.digest));
    await expect(
      verifier.verifyImage({ image: img.image, digest: img.digest, requirement: keyless(img), source: SOURCE }),
    ).rejects.toMatchObject({ transient: true });
  });

  it('an image that is not in the registry', async () => {
    const img = await freshImage();
    const v = await verifier.verifyImage({
      image: img.image,
      digest: `sha256:${'e'.repeat(64)}`,
      requirement: keyless(img),
      source: SOURCE,
    });
    expect(v).toMatchObject({ ok: false, code: 'IMAGE_NOT_FOUND' });
  });

  it('requirements for another repository, or trusting nobody, or malformed', async () => {
    const img = await freshImage();
    await pushLegacySignature(img);
    const run = (requirement: ImageRequirement, image = img.image, digest = img.digest) =>
      verifier.verifyImage({ image, digest, requirement, source: SOURCE });
    expect(await run(keyless(img, { repository: `${reg.url}/org/other` }))).toMatchObject({ ok: false, code: 'REQUIREMENT_MISMATCH' });
    expect(await run({ repository: img.image, keyless: [], keys: [] })).toMatchObject({ ok: false, code: 'REQUIREMENT_INVALID' });
    expect(await run({ repository: img.image, keys: [{ publicKeyPem: 'x', revoked: true }] })).toMatchObject({
      ok: false,
      code: 'REQUIREMENT_INVALID',
    });
    expect(await run(keyless(img, { keyless: [{ issuer: GITHUB_ISSUER }] }))).toMatchObject({ ok: false, code: 'REQUIREMENT_INVALID' });
    expect(await run({ repository: img.image, keys: [{ publicKeyPem: 'x', validFrom: 'yesterday' }] })).toMatchObject({
      ok: false,
      code: 'REQUIREMENT_INVALID',
    });
    expect(await run(keyless(img), img.image, 'sha256:ABC')).toMatchObject({ ok: false, code: 'INVALID_DIGEST' });
    expect(await run(keyless(img), `${img.image}:latest`)).toMatchObject({ ok: false, code: 'INVALID_REFERENCE' });
  });
});

// Issue #17 points 1 and 2: a commit SHA is no binding on its own. Each test plays an attacker who can run a trusted
// workflow identity (a reusable generator, an organisation-wide build workflow) somewhere it should not count, or who
// holds an identity that is trusted to sign images but is not CI.
describe('provenance vouches only for a commit of the followed repository, branch, trigger and runner', () => {
  const ORG_WORKFLOW = 'https://github.com/org/.github/.github/workflows/build.yml@refs/heads/main';
  const orgWide = (img: PushedImage, over: Partial<ImageRequirement> = {}): ImageRequirement =>
    keyless(img, { keyless: [{ identity: ORG_WORKFLOW, issuer: GITHUB_ISSUER }], requireProvenance: true, ...over });
  /** A run of the organisation-wide workflow: the certificate names the calling repository, ref, trigger and runner. */
  const orgRun = (over: Partial<WorkflowIdentity> = {}): WorkflowIdentity => ({
    san: ORG_WORKFLOW,
    sha: COMMIT,
    repository: 'org/app',
    ref: 'refs/heads/main',
    eventName: 'push',
    runnerEnvironment: 'github-hosted',
    ...over,
  });
  async function attest(
    img: PushedImage & { repo: string },
    id: WorkflowIdentity,
    st: { repository?: string; ref?: string; commit?: string } = {},
  ): Promise<void> {
    const statement = slsaV1Statement({ digest: img.digest, name: img.image, commit: COMMIT, ...st });
    await pushReferrerBundle(reg.url, img.repo, img.digest, await sigstore.signStatement(statement, id));
  }
  const verify = (img: PushedImage, requirement: ImageRequirement, source = SOURCE) =>
    verifier.verifyImage({ image: img.image, digest: img.digest, requirement, source });

  it('the release build on a policy branch counts', async () => {
    const img = await freshImage();
    await attest(img, orgRun());
    expect(await verify(img, orgWide(img))).toMatchObject({
      ok: true,
      sourceCommit: COMMIT,
      provenance: { sourceRepository: 'https://github.com/org/app' },
    });
  });

  it('a fork (attacker/evil) running the trusted reusable generator at refs/pull/7/merge on the same SHA vouches for nothing', async () => {
    const img = await freshImage();
    const fork: WorkflowIdentity = {
      san: GENERATOR,
      sha: COMMIT,
      jobWorkflowRef: GENERATOR_REF,
      repository: 'attacker/evil',
      ref: 'refs/pull/7/merge',
      eventName: 'pull_request',
    };
    await pushLegacyAttestation(
      img,
      slsaV02Statement({
        digest: img.digest,
        builderId: GENERATOR,
        commit: COMMIT,
        repository: 'https://github.com/attacker/evil',
        ref: 'refs/pull/7/merge',
      }),
      fork,
    );
    const v = await verify(img, {
      repository: img.image,
      keyless: [{ identity: GENERATOR, issuer: GITHUB_ISSUER }],
      requireProvenance: true,
    });
    expect(v).toMatchObject({ ok: false, code: 'PROVENANCE_REPOSITORY_MISMATCH' });
    expect(v.reason).toContain('attacker/evil');
    expect(v.sourceCommit).toBeUndefined();
  });

  it('the organisation-wide workflow run in another repository of the organisation, even on main, vouches for nothing', async () => {
    const img = await freshImage();
    await attest(img, orgRun({ repository: 'org/sandbox' }), { repository: 'https://github.com/org/sandbox' });
    const v = await verify(img, orgWide(img));
    expect(v).toMatchObject({ ok: false, code: 'PROVENANCE_REPOSITORY_MISMATCH' });
    expect(v.sourceCommit).toBeUndefined();
  });

  it('a pull-request merge ref of the followed repository is no policy branch', async () => {
    const img = await freshImage();
    await attest(img, orgRun({ ref: 'refs/pull/7/merge', eventName: 'pull_request' }), { ref: 'refs/pull/7/merge' });
    expect(await verify(img, orgWide(img, { allowPullRequestTriggers: true }))).toMatchObject({
      ok: false,
      code: 'PROVENANCE_REF_NOT_ALLOWED',
    });
  });

  it('branch globs and tags: release/* matches one segment; tags count only when the rule names them', async () => {
    const releases = { repository: SOURCE.repository, branches: ['release/*'] };
    const ok = await freshImage();
    await attest(ok, orgRun({ ref: 'refs/heads/release/1.2' }), { ref: 'refs/heads/release/1.2' });
    expect(await verify(ok, orgWide(ok), releases)).toMatchObject({ ok: true, sourceCommit: COMMIT });
    expect(await verify(ok, orgWide(ok))).toMatchObject({ ok: false, code: 'PROVENANCE_REF_NOT_ALLOWED' });
    const deep = await freshImage();
    await attest(deep, orgRun({ ref: 'refs/heads/release/1.2/evil' }), { ref: 'refs/heads/release/1.2/evil' });
    expect(await verify(deep, orgWide(deep), releases)).toMatchObject({ ok: false, code: 'PROVENANCE_REF_NOT_ALLOWED' });
    const tag = await freshImage();
    await attest(tag, orgRun({ ref: 'refs/tags/v1.0.0' }), { ref: 'refs/tags/v1.0.0' });
    expect(await verify(tag, orgWide(tag))).toMatchObject({ ok: false, code: 'PROVENANCE_REF_NOT_ALLOWED' });
    expect(await verify(tag, orgWide(tag, { tags: ['v*'] }))).toMatchObject({ ok: true, sourceCommit: COMMIT });
  });

  it('pull_request_target runs on the base branch (with the attacker code checked out) vouch for nothing unless allowed', async () => {
    for (const eventName of ['pull_request_target', 'pull_request', 'merge_request_event']) {
      const img = await freshImage();
      await attest(img, orgRun({ eventName }));
      expect(await verify(img, orgWide(img)), eventName).toMatchObject({ ok: false, code: 'PROVENANCE_TRIGGER_NOT_ALLOWED' });
      expect(await verify(img, orgWide(img, { allowPullRequestTriggers: true })), eventName).toMatchObject({
        ok: true,
        sourceCommit: COMMIT,
      });
    }
    const unknown = await freshImage();
    await attest(unknown, orgRun({ eventName: null }));
    expect(await verify(unknown, orgWide(unknown))).toMatchObject({ ok: false, code: 'PROVENANCE_TRIGGER_NOT_ALLOWED' });
  });

  it('self-hosted runners (attacker-reachable caches, persistent state) vouch for nothing unless allowed', async () => {
    const img = await freshImage();
    await attest(img, orgRun({ runnerEnvironment: 'self-hosted' }));
    expect(await verify(img, orgWide(img))).toMatchObject({ ok: false, code: 'PROVENANCE_RUNNER_NOT_ALLOWED' });
    expect(await verify(img, orgWide(img, { allowSelfHostedRunners: true }))).toMatchObject({ ok: true, sourceCommit: COMMIT });
  });

  it('a provenance that contradicts its own certificate (repository or ref) is fatal', async () => {
    const repo = await freshImage();
    await attest(repo, orgRun(), { repository: 'https://github.com/org/other' });
    expect(await verify(repo, orgWide(repo))).toMatchObject({ ok: false, code: 'PROVENANCE_REPOSITORY_MISMATCH' });
    const ref = await freshImage();
    await attest(ref, orgRun(), { ref: 'refs/heads/feature' });
    expect(await verify(ref, orgWide(ref))).toMatchObject({ ok: false, code: 'PROVENANCE_REF_MISMATCH' });
  });

  it('an out-of-scope provenance (a pull-request build of the same bytes) does not block the release build', async () => {
    const img = await freshImage();
    await attest(img, orgRun({ ref: 'refs/pull/7/merge', eventName: 'pull_request' }), { ref: 'refs/pull/7/merge' });
    await attest(img, orgRun());
    const v = await verify(img, orgWide(img));
    expect(v).toMatchObject({ ok: true, sourceCommit: COMMIT });
    expect(v.signatures.map((s) => s.provenanceRefused?.code)).toEqual(['PROVENANCE_REF_NOT_ALLOWED', undefined]);
  });

  it('an email identity trusted to sign images cannot vouch for a commit (no source digest and repository in its certificate)', async () => {
    const img = await freshImage();
    const alice: WorkflowIdentity = { san: 'alice@example.com', issuer: 'https://accounts.google.com' };
    await attest(img, alice, { commit: OTHER_COMMIT });
    const requirement = keyless(img, {
      keyless: [
        { identity: WORKFLOW, issuer: GITHUB_ISSUER },
        { identity: 'alice@example.com', issuer: 'https://accounts.google.com' },
      ],
      requireProvenance: true,
    });
    const v = await verify(img, requirement);
    expect(v).toMatchObject({ ok: false, code: 'PROVENANCE_SIGNER_NOT_CI' });
    expect(v.sourceCommit).toBeUndefined();
    // She may still sign the image; the verdict then names no source commit, so it completes no commit's image set.
    await pushLegacySignature(img, alice);
    const signedOnly = await verify(img, { ...requirement, requireProvenance: false });
    expect(signedOnly).toMatchObject({ ok: true });
    expect(signedOnly.sourceCommit).toBeUndefined();
    expect(signedOnly.provenance).toBeUndefined();
  });

  it('a CI identity whose certificate lacks the source repository URI cannot vouch either', async () => {
    const img = await freshImage();
    await attest(img, orgRun({ repository: null }));
    expect(await verify(img, orgWide(img))).toMatchObject({ ok: false, code: 'PROVENANCE_SIGNER_NOT_CI' });
  });
});
