// `info` (POST or GET, no authorisation): what the sandbox RSSP is, where its OAuth2 server lives,
// and which CSC methods and algorithms it implements.
import type { RouteRequest, RouteResult } from './context';
import { optionalString } from './http-io';
import { OID } from './oids';

export const IMPLEMENTED_METHODS = [
  'auth/login',
  'oauth2/token',
  'credentials/list',
  'credentials/info',
  'credentials/authorize',
  'credentials/sendOTP',
  'oauth2/authorize',
  'signatures/signHash',
  'signatures/timestamp',
];

export function handleInfo({ ctx, params }: RouteRequest): RouteResult {
  optionalString(params, 'lang'); // accepted for conformance; responses are always en-US
  return {
    body: {
      specs: '2.0.0.2',
      name: 'Sealer Sandbox RSSP',
      logo: `${ctx.oauth2Url}/logo.png`,
      region: 'JP',
      lang: 'en-US',
      description: 'Local CSC API v2 stand-in for remote e-seal tests and demos; test keys only',
      // "basic": auth/login with HTTP Basic; a tenant's static API token needs no advertising.
      authType: ['basic', 'oauth2client'],
      oauth2: ctx.oauth2Url,
      asynchronousOperationMode: false,
      methods: IMPLEMENTED_METHODS,
      validationInfo: false,
      signAlgorithms: { algos: [OID.rsaEncryption, OID.sha256WithRSAEncryption, OID.ecdsaWithSha256] },
      signature_formats: { formats: [] },
      conformance_levels: [],
    },
  };
}
