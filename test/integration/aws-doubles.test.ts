// The STS AssumeRole double and the JSON-protocol double verify signatures with the same code as
// the S3 front; here each is shown to accept a real client signing with the real key and to refuse
// the same client with a wrong one, with no keyway in between. The credentials the STS double issues
// are then accepted by the S3 front only together with their session token.
import { GetObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_CLI, awsEnv, jsS3Client, run, testHttpsAgent, testUndiciAgent } from '../helpers/aws-clients.ts';
import { type AwsJsonDouble, startAwsJsonDouble } from '../helpers/aws-json-double.ts';
import { type S3Front, startS3Front } from '../helpers/s3-front.ts';
import { signRequest } from '../helpers/sigv4-client.ts';
import { type StsDouble, startStsDouble } from '../helpers/sts-double.ts';

const REAL = { accessKeyId: 'AKIAKEYWAYTEST000002', secretAccessKey: 'real-secret/kw+sts0000000000000000000000' };
const WRONG = { accessKeyId: REAL.accessKeyId, secretAccessKey: 'wrong-secret/placeholder000000000000000' };
const ROLE = 'arn:aws:iam::123456789012:role/keyway-test';

let sts: StsDouble;
let json: AwsJsonDouble;
let front: S3Front;
const undici = testUndiciAgent();

beforeAll(async () => {
  sts = await startStsDouble({ keys: [REAL] });
  json = await startAwsJsonDouble({ keys: [REAL], service: 'dynamodb' });
  front = await startS3Front({ keys: () => sts.issued, buckets: ['temp'] });
});

afterAll(async () => {
  await undici.close();
  await Promise.all([sts?.close(), json?.close(), front?.close()]);
});

const stsClient = (credentials: typeof REAL) =>
  new STSClient({ region: 'us-east-1', endpoint: sts.url, credentials, maxAttempts: 1, requestHandler: { httpsAgent: testHttpsAgent() } });

describe('the STS AssumeRole double', () => {
  it('answers a signed AssumeRole from the JS SDK with temporary credentials expiring when the test says', async () => {
    sts.setLifetime(900);
    const before = sts.calls.length;
    const started = Date.now();
    const out = await stsClient(REAL).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'keyway', DurationSeconds: 3600, ExternalId: 'ext-1' }));
    expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(out.Credentials?.SessionToken).toBe(sts.issued.at(-1)?.sessionToken);
    const expiresIn = out.Credentials!.Expiration!.getTime() - started;
    expect(expiresIn).toBeGreaterThan(898_000);
    expect(expiresIn).toBeLessThan(902_000);
    expect(sts.calls.length - before).toBe(1);
    expect(sts.calls.at(-1)).toMatchObject({
      roleArn: ROLE,
      roleSessionName: 'keyway',
      durationSeconds: 3600,
      externalId: 'ext-1',
      accessKeyId: REAL.accessKeyId,
    });
    sts.setLifetime(undefined);
  });

  it('refuses an AssumeRole signed with a wrong secret (403 SignatureDoesNotMatch), and issues nothing', async () => {
    const issued = sts.issued.length;
    await expect(stsClient(WRONG).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'keyway' }))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
      $metadata: { httpStatusCode: 403 },
    });
    expect(sts.issued.length).toBe(issued);
    expect(sts.refused.at(-1)?.code).toBe('SignatureDoesNotMatch');
  });

  it('answers the aws CLI (sts assume-role), and fails every call while told to', async () => {
    const aws = awsEnv(REAL);
    try {
      const endpoint = ['--endpoint-url', `https://127.0.0.1:${sts.port}`, '--output', 'json'];
      const out = await run(AWS_CLI, [...endpoint, 'sts', 'assume-role', '--role-arn', ROLE, '--role-session-name', 'cli'], aws.env);
      expect(out.code).toBe(0);
      expect(JSON.parse(out.stdout).Credentials.AccessKeyId).toBe(sts.issued.at(-1)?.accessKeyId);
      sts.setFailure({ status: 503, code: 'ServiceUnavailable', message: 'try later' });
      await expect(stsClient(REAL).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'keyway' }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 503 },
      });
    } finally {
      sts.setFailure(undefined);
      aws.cleanup();
    }
  });

  it('its credentials pass the S3 front only with their session token', async () => {
    const out = await stsClient(REAL).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 's3' }));
    const temp = {
      accessKeyId: out.Credentials!.AccessKeyId!,
      secretAccessKey: out.Credentials!.SecretAccessKey!,
      sessionToken: out.Credentials!.SessionToken!,
    };
    const s3 = jsS3Client(front.url, temp);
    await s3.send(new PutObjectCommand({ Bucket: 'temp', Key: 'k', Body: 'with a role' }));
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'temp', Key: 'k' }))).Body?.transformToString()).toBe('with a role');
    expect(front.seen.at(-1)).toMatchObject({ securityToken: true, accessKeyId: temp.accessKeyId });
    expect(front.seen.at(-1)?.signedHeaders).toContain('x-amz-security-token');
    const { sessionToken: _none, ...withoutToken } = temp;
    await expect(jsS3Client(front.url, withoutToken).send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'InvalidToken' });
    await expect(jsS3Client(front.url, { ...temp, sessionToken: 'kw-sts-forged' }).send(new ListBucketsCommand({}))).rejects.toMatchObject({
      name: 'InvalidToken',
    });
    s3.destroy();
  });
});

describe('the JSON-protocol double (POST with X-Amz-Target)', () => {
  it('answers the aws CLI (dynamodb list-tables) signed with the real key; refuses a wrong secret', async () => {
    const good = awsEnv(REAL);
    const bad = awsEnv(WRONG);
    try {
      const endpoint = ['--endpoint-url', `https://127.0.0.1:${json.port}`, '--output', 'json'];
      const out = await run(AWS_CLI, [...endpoint, 'dynamodb', 'list-tables'], good.env);
      expect(out.code).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({ TableNames: ['keyway-signed'] });
      expect(json.calls.at(-1)).toMatchObject({ target: 'DynamoDB_20120810.ListTables', service: 'dynamodb', accessKeyId: REAL.accessKeyId });
      // botocore signs the JSON body through the signature alone: no x-amz-content-sha256 header.
      expect(json.calls.at(-1)).toMatchObject({ payloadMode: 'absent', signedHeaders: ['content-type', 'host', 'x-amz-date', 'x-amz-target'] });
      const refused = await run(AWS_CLI, [...endpoint, 'dynamodb', 'list-tables'], bad.env);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('InvalidSignatureException');
    } finally {
      good.cleanup();
      bad.cleanup();
    }
  });

  it('takes a hand-signed call whose body hash is only in the signature; a body changed after signing is refused', async () => {
    const signed = await signRequest({
      method: 'POST',
      url: `${json.url}/`,
      key: REAL,
      service: 'dynamodb',
      headers: { 'x-amz-target': 'DynamoDB_20120810.DescribeTable', 'content-type': 'application/x-amz-json-1.0' },
      body: Buffer.from('{"TableName":"one"}'),
    });
    expect(signed.headers['x-amz-content-sha256']).toBeUndefined();
    const post = async (body: Buffer) => {
      const answer = await request(signed.url, { method: 'POST', headers: signed.headers, body, dispatcher: undici });
      return { status: answer.statusCode, body: (await answer.body.json()) as Record<string, unknown> };
    };
    expect((await post(signed.body)).status).toBe(200);
    expect(json.calls.at(-1)).toMatchObject({ target: 'DynamoDB_20120810.DescribeTable', body: { TableName: 'one' }, payloadMode: 'absent' });
    const forged = await post(Buffer.from('{"TableName":"two"}'));
    expect(forged.status).toBe(400);
    expect(forged.body['__type']).toBe('com.amazon.coral.service#InvalidSignatureException');
  });
});
