import type { KindExample } from '../example.ts';

export const awsSigV4Example: KindExample<'aws_sigv4'> = {
  secret: () => JSON.stringify({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' }),
  blank: JSON.stringify({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: ' ' }),
  fields: { region: 'eu-west-1', service: 's3' },
  describes: 'AWS Signature Version 4, signed again per request (eu-west-1/s3)',
};
