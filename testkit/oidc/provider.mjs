// A certified OpenID provider (oidc-provider) for the sign-in tests of the server and the desktop.
//
// Listens on 127.0.0.1 on a port the system picks, prints one JSON line to stdout,
// {"issuer":"http://127.0.0.1:PORT"}, and runs until killed or until stdin closes (so it never
// outlives the test that started it). Everything else it says goes to stderr.
//
// It knows one public client, the desktop app ("tallydesk-desktop", PKCE S256, loopback
// redirect), and one resource server, the Tallydesk API: the authorization code flow yields a
// signed JWT access token whose audience is "tallydesk-api" and that carries the user's email.
// Any login name signs in (the built-in development login and consent pages); "ana" becomes
// ana@example.com, a name containing "@" is taken as the email itself.
//
// Refresh tokens (offline_access) rotate at every use; revocation (RFC 7009), RFC 9207's `iss`
// and RP-initiated logout are on. Like its redirect URIs, the client's post-logout redirect URI
// may be on any loopback port (RFC 8252 §7.3), as the desktop app's listener is.
//
// Signing keys are generated at every start and never stored.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints development notices with console.info; stdout carries only the issuer.
console.info = console.warn;

const CLIENT_ID = 'tallydesk-desktop';
// A resource indicator must be an absolute URI (RFC 8707); the audience is the server's.
const API_RESOURCE = 'urn:tallydesk:api';
const API_AUDIENCE = 'tallydesk-api';

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig' };
}

function claimsOf(accountId) {
  const email = accountId.includes('@') ? accountId : `${accountId}@example.com`;
  return { sub: accountId, email, email_verified: true, name: accountId };
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        post_logout_redirect_uris: ['http://127.0.0.1/signed-out'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    pkce: { methods: ['S256'], required: () => true },
    jwks: {
      keys: [
        // ID tokens: RS256, the default every client understands.
        signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
        // Access tokens for the API.
        signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      ],
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return claimsOf(sub);
        },
      };
    },
    // Who the token is about, in the access token itself: the API reads these.
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      const { email, email_verified, name } = claimsOf(token.accountId);
      return { email, email_verified, name };
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a `resource` parameter, the authorization request is for the API...
        defaultResource: (_ctx, _client, oneOf) => (oneOf ? oneOf[0] : API_RESOURCE),
        // ...and so is the token request, so the desktop client needs no extra parameters.
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, resource, client) {
          if (resource !== API_RESOURCE || client.clientId !== CLIENT_ID) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'tickets',
            audience: API_AUDIENCE,
            accessTokenTTL: 10 * 60,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: 10 * 60,
      AuthorizationCode: 60,
      IdToken: 10 * 60,
      Interaction: 10 * 60,
      Grant: 60 * 60,
      Session: 60 * 60,
      RefreshToken: 60 * 60,
    },
  });
  // oidc-provider lets a native client's loopback redirect URIs use any port, but matches
  // post-logout redirect URIs exactly; the desktop app's listener has a new port every time.
  const exactly = provider.Client.prototype.postLogoutRedirectUriAllowed;
  provider.Client.prototype.postLogoutRedirectUriAllowed = function allowed(value) {
    if (exactly.call(this, value)) return true;
    const url = URL.parse(value);
    if (!url || this.applicationType !== 'native' || url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
      return false;
    }
    url.port = '';
    return exactly.call(this, url.href);
  };
  provider.on('server_error', (_ctx, error) => console.error('server_error:', error));

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// Whoever started this process holds stdin; when it goes away, so does the provider.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
