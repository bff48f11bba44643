// The one pino logger factory. Secrets must never be put in logged objects in the first place;
// the redaction list is a second line of defence for field names that commonly carry them.
import pino from 'pino';

export const REDACTED_KEYS = [
  'pin',
  'PIN',
  'otp',
  'OTP',
  'totpSecret',
  'clientSecret',
  'client_secret',
  'secret',
  'password',
  'token',
  'access_token',
  'accessToken',
  'SAD',
  'sad',
  'authData',
  'authorization',
  'Authorization',
];

export type Logger = pino.Logger;

export function createLogger(
  options: { name?: string; level?: string; destination?: pino.DestinationStream } = {},
) {
  const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
      name: options.name ?? 'sealer',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
