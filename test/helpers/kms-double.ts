// AWS KMS as a double of its wire protocol (TrentService over the AWS JSON protocol, plain HTTP on
// loopback as moto serves it; each request's SigV4 signature checked, a wrong key refused): a
// symmetric key per id with its aliases, and Encrypt, Decrypt and GenerateDataKey. A ciphertext
// blob is this double's own (the key's id, a nonce, AES-256-GCM), opaque to keyway as AWS's is, and
// Decrypt refuses a blob of another key than the KeyId asked for (IncorrectKeyException), as KMS does.
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { type AwsJsonDouble, AwsJsonError, startAwsJsonDouble } from './aws-json-double.ts';
import type { AwsKey } from './sigv4-verifier.ts';

export interface KmsDouble extends AwsJsonDouble {
  /** Makes a key; returns its ARN. Every alias given names it. */
  createKey(...aliases: string[]): string;
  /** Disables a key: every call with it then fails (DisabledException), as a revoked grant would. */
  disable(arn: string): void;
  enable(arn: string): void;
  /** Calls by operation name. */
  count(operation: string): number;
}

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

export async function startKmsDouble(keys: AwsKey[]): Promise<KmsDouble> {
  const material = new Map<string, Buffer>(); // ARN -> AES key
  const names = new Map<string, string>(); // id, ARN, alias, alias ARN -> ARN
  const disabled = new Set<string>();
  const resolveKey = (id: string | undefined): string => {
    const arn = id === undefined ? undefined : names.get(id);
    if (arn === undefined) throw new AwsJsonError(400, 'NotFoundException', `Key '${id}' does not exist`);
    if (disabled.has(arn)) throw new AwsJsonError(400, 'DisabledException', `${arn} is disabled.`);
    return arn;
  };
  const seal = (arn: string, plaintext: Buffer): Buffer => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material.get(arn)!, nonce);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const arnBytes = Buffer.from(arn);
    return Buffer.concat([Buffer.from([arnBytes.length]), arnBytes, nonce, body]);
  };
  const open = (blob: Buffer, asked: string | undefined): { arn: string; plaintext: Buffer } => {
    const arn = blob.subarray(1, 1 + blob[0]!).toString();
    if (!material.has(arn)) throw new AwsJsonError(400, 'InvalidCiphertextException', '');
    if (asked !== undefined && resolveKey(asked) !== arn)
      throw new AwsJsonError(400, 'IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    resolveKey(arn);
    const rest = blob.subarray(1 + blob[0]!);
    const decipher = createDecipheriv('aes-256-gcm', material.get(arn)!, rest.subarray(0, 12));
    decipher.setAuthTag(rest.subarray(rest.length - 16));
    try {
      return { arn, plaintext: Buffer.concat([decipher.update(rest.subarray(12, rest.length - 16)), decipher.final()]) };
    } catch {
      throw new AwsJsonError(400, 'InvalidCiphertextException', '');
    }
  };
  const double = await startAwsJsonDouble({
    keys,
    service: 'kms',
    plain: true,
    handler: (call) => {
      const body = call.body as { KeyId?: string; Plaintext?: string; CiphertextBlob?: string; KeySpec?: string };
      switch (call.target) {
        case 'TrentService.Encrypt': {
          const arn = resolveKey(body.KeyId);
          return { KeyId: arn, CiphertextBlob: seal(arn, Buffer.from(body.Plaintext ?? '', 'base64')).toString('base64') };
        }
        case 'TrentService.Decrypt': {
          const { arn, plaintext } = open(Buffer.from(body.CiphertextBlob ?? '', 'base64'), body.KeyId);
          return { KeyId: arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        }
        case 'TrentService.GenerateDataKey': {
          const arn = resolveKey(body.KeyId);
          if (body.KeySpec !== 'AES_256') throw new AwsJsonError(400, 'ValidationException', 'KeySpec');
          const plaintext = randomBytes(32);
          return { KeyId: arn, Plaintext: plaintext.toString('base64'), CiphertextBlob: seal(arn, plaintext).toString('base64') };
        }
        default:
          throw new AwsJsonError(400, 'UnknownOperationException', call.target);
      }
    },
  });
  return Object.assign(double, {
    createKey(...aliases: string[]): string {
      const id = randomUUID();
      const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`;
      material.set(arn, randomBytes(32));
      for (const name of [id, arn, ...aliases, ...aliases.map((a) => `arn:aws:kms:${REGION}:${ACCOUNT}:${a}`)]) names.set(name, arn);
      return arn;
    },
    disable(arn: string): void {
      disabled.add(arn);
    },
    enable(arn: string): void {
      disabled.delete(arn);
    },
    count(operation: string): number {
      return double.calls.filter((c) => c.target === `TrentService.${operation}`).length;
    },
  });
}
