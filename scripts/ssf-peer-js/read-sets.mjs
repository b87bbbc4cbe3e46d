// Reads the Security Event Tokens a Shared Signals receiver was delivered (one JSON object per
// line: {"via": "push" | "poll", "set": "<SET>"}) with jose (panva), a JOSE library nobody here
// wrote: each SET is verified from the transmitter's jwks_uri (RS256, typ secevent+jwt, iss,
// aud), then read as RFC 8417 asks (iat, jti, exactly one event, an SSF subject identifier).
// Prints what it read; exits non-zero at the first SET it refuses.
//
// Usage: node read-sets.mjs BASE_URL AUDIENCE FILE
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [base, audience, file] = process.argv.slice(2);
const configuration = await (await fetch(`${base}/.well-known/ssf-configuration`)).json();
const keys = createRemoteJWKSet(new URL(configuration.jwks_uri));
const formats = new Set(['iss_sub', 'opaque', 'email', 'complex', 'jwt_id']);
const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
const counts = {};
const seen = new Set();
for (const line of lines) {
  const { via, set } = JSON.parse(line);
  const { payload, protectedHeader } = await jwtVerify(set, keys, {
    algorithms: ['RS256'],
    typ: 'secevent+jwt',
    issuer: configuration.issuer,
    audience,
  });
  if (typeof payload.iat !== 'number' || typeof payload.jti !== 'string') {
    throw new Error(`${payload.jti}: a SET needs iat and jti (RFC 8417 section 2.2)`);
  }
  if ('exp' in payload) throw new Error(`${payload.jti}: a SET carries no exp (RFC 8417 section 2.2)`);
  const events = Object.entries(payload.events ?? {});
  if (events.length !== 1 || typeof events[0][1] !== 'object') {
    throw new Error(`${payload.jti}: exactly one event object per SET (SSF 1.0 section 4.1.1)`);
  }
  if (!formats.has(payload.sub_id?.format)) {
    throw new Error(`${payload.jti}: sub_id is not an SSF subject identifier: ${JSON.stringify(payload.sub_id)}`);
  }
  const key = `${via}:${payload.jti}`;
  if (seen.has(key)) throw new Error(`${payload.jti} delivered twice by ${via}`);
  seen.add(key);
  const name = events[0][0].split('/').pop();
  counts[`${via} ${name}`] = (counts[`${via} ${name}`] ?? 0) + 1;
  if (protectedHeader.kid === undefined) throw new Error(`${payload.jti}: no kid`);
}
const summary = Object.entries(counts).map(([what, count]) => `${count} ${what}`).join(', ');
console.log(`SSF peer (jose ${JSON.parse(readFileSync(new URL('./node_modules/jose/package.json', import.meta.url))).version}): ${lines.length} delivered SETs verified and read: ${summary}`);
