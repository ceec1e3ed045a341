// HTTP/2 CONNECT (no :protocol) through wingman: node h2-connect.js URL
// AUTHORITY BYTES. Sends BYTES random bytes on the tunnel, ends its side and
// prints "status NNN" and "echoed N ok" when what came back is what it sent.
'use strict';
const http2 = require('http2');
const crypto = require('crypto');

const [url, authority, n] = process.argv.slice(2);
const session = http2.connect(url);
session.on('error', (e) => { console.log('error', e.message); process.exit(2); });
const req = session.request({ ':method': 'CONNECT', ':authority': authority });
const data = crypto.randomBytes(Number(n));
const got = [];
req.on('response', (h) => {
  console.log('status ' + h[':status']);
  if (h[':status'] !== 200) { session.destroy(); return; }
  req.end(data);
});
req.on('data', (d) => got.push(d));
req.on('end', () => {
  const all = Buffer.concat(got);
  if (all.length || Number(n) === 0) console.log('echoed ' + all.length + (Buffer.compare(all, data) ? ' MISMATCH' : ' ok'));
  session.close();
});
req.on('error', (e) => { console.log('stream error', e.message); session.close(); });
