// Which AWS host names keyway reads a signing scope from: AWS's own endpoint forms only. Names under
// amazonaws.com that anyone can rent (load balancers, instances, databases, API Gateways) are not
// read as a service, or keyway would sign for them with the grant's key and session token (issue 34).
import { describe, expect, it } from 'vitest';
import { isAwsDomain, scopeFromHost } from './signing/scope.ts';

describe('scopeFromHost', () => {
  it("reads AWS's own endpoint names", () => {
    const cases: Array<[string, string, string]> = [
      ['s3.eu-west-1.amazonaws.com', 's3', 'eu-west-1'],
      ['bkt.s3.eu-west-1.amazonaws.com', 's3', 'eu-west-1'],
      ['my.dotted.bucket.s3.us-west-2.amazonaws.com', 's3', 'us-west-2'],
      ['bkt.s3.amazonaws.com', 's3', 'us-east-1'],
      ['s3.amazonaws.com', 's3', 'us-east-1'],
      ['bkt.s3-us-west-2.amazonaws.com', 's3', 'us-west-2'],
      ['s3-external-1.amazonaws.com', 's3', 'us-east-1'],
      ['bkt.s3.dualstack.ap-south-1.amazonaws.com', 's3', 'ap-south-1'],
      ['bkt.s3-accelerate.amazonaws.com', 's3', 'us-east-1'],
      ['ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com', 's3', 'eu-west-1'],
      ['123456789012.s3-control.eu-west-1.amazonaws.com', 's3', 'eu-west-1'],
      ['dynamodb.us-east-1.amazonaws.com', 'dynamodb', 'us-east-1'],
      ['dynamodb-fips.us-gov-west-1.amazonaws.com', 'dynamodb', 'us-gov-west-1'],
      ['bedrock-runtime.us-east-1.amazonaws.com', 'bedrock-runtime', 'us-east-1'],
      ['sts.amazonaws.com', 'sts', 'us-east-1'],
      ['iam.amazonaws.com', 'iam', 'us-east-1'],
      ['S3.EU-WEST-1.AMAZONAWS.COM.', 's3', 'eu-west-1'],
      ['s3.cn-north-1.amazonaws.com.cn', 's3', 'cn-north-1'],
    ];
    for (const [host, service, region] of cases) expect(scopeFromHost(host), host).toEqual({ service, region });
  });

  it('reads nothing from names that anyone can rent under amazonaws.com, nor from other domains', () => {
    for (const host of [
      's3-abc-123.eu-west-1.elb.amazonaws.com',
      'internal-s3-x.eu-west-1.elb.amazonaws.com',
      'ec2-203-0-113-7.eu-west-1.compute.amazonaws.com',
      'ec2-203-0-113-7.compute-1.amazonaws.com',
      'mydb.abcdefgh.eu-west-1.rds.amazonaws.com',
      'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
      'bkt.s3-website-us-east-1.amazonaws.com',
      's3.eu-west-1.amazonaws.com.evil.test',
      'amazonaws.com',
      'minio.example.test',
    ])
      expect(scopeFromHost(host), host).toBeUndefined();
    expect(isAwsDomain('s3-abc-123.eu-west-1.elb.amazonaws.com')).toBe(true);
    expect(isAwsDomain('minio.example.test')).toBe(false);
  });
});
