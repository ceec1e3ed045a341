// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) with Node's http2, frames
// built by hand. node h2-client.js URL [--ca FILE] STEP...; steps as client.py:
// send:TEXT, big:N, close, idle:S (wait S seconds: "reset by server CODE" or
// "still open"). Prints "settings connect_protocol=1", "status NNN",
// then one line per step.
'use strict';
const http2 = require('http2');
const crypto = require('crypto');
const fs = require('fs');

const args = process.argv.slice(2);
const url = new URL(args.shift());
let ca;
if (args[0] === '--ca') { args.shift(); ca = fs.readFileSync(args.shift()); }

function frame(op, payload) {
  const mask = crypto.randomBytes(4);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n])
    : n < 65536 ? Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255])
    : Buffer.concat([Buffer.from([0x80 | op, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// Unmasked server frames: returns [opcode, payload, rest] or null when incomplete.
function parse(buf) {
  if (buf.length < 2) return null;
  let n = buf[1] & 127, off = 2;
  if (n === 126) { if (buf.length < 4) return null; n = buf.readUInt16BE(2); off = 4; }
  else if (n === 127) { if (buf.length < 10) return null; n = Number(buf.readBigUInt64BE(2)); off = 10; }
  if (buf.length < off + n) return null;
  return [buf[0] & 15, buf.subarray(off, off + n), buf.subarray(off + n)];
}

const session = http2.connect(url.origin, ca ? { ca } : {});
session.on('error', (e) => { console.log('error', e.message); process.exit(2); });
session.once('remoteSettings', (s) => {
  console.log('settings connect_protocol=' + (s.enableConnectProtocol ? 1 : 0));
  if (!s.enableConnectProtocol) { session.close(); return; }
  const req = session.request({
    ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': url.protocol === 'https:' ? 'https' : 'http',
    ':path': url.pathname, ':authority': url.host,
    'sec-websocket-version': '13', 'sec-websocket-key': crypto.randomBytes(16).toString('base64'),
  }, { endStream: false });
  let buf = Buffer.alloc(0), waiting = null, status = 0;
  req.on('response', (h) => {
    status = h[':status'];
    console.log('status ' + status);
    if (status !== 200) { session.destroy(); return; }
    next();
  });
  req.on('data', (d) => { buf = Buffer.concat([buf, d]); if (waiting) waiting(); });
  req.on('end', () => { console.log('stream ended'); session.close(); });
  req.on('error', (e) => console.log('stream error', e.message));
  function recv(cb) {
    const f = parse(buf);
    if (f) { buf = f[2]; waiting = null; cb(f[0], f[1]); } else waiting = () => recv(cb);
  }
  function next() {
    const step = args.shift();
    if (!step) { req.end(); return; }
    const i = step.indexOf(':'), op = i < 0 ? step : step.slice(0, i), arg = step.slice(i + 1);
    if (op === 'send') {
      req.write(frame(1, Buffer.from(arg)));
      recv((o, p) => { console.log('echo ' + p.toString()); next(); });
    } else if (op === 'big') {
      const data = crypto.randomBytes(Number(arg));
      req.write(frame(2, data));
      recv((o, p) => { console.log('big ' + p.length + (Buffer.compare(p, data) ? ' MISMATCH' : ' ok')); next(); });
    } else if (op === 'idle') {
      let done = false;
      const t = setTimeout(() => { done = true; console.log('still open'); session.destroy(); }, Number(arg) * 1000);
      req.on('close', () => {
        if (done) return;
        clearTimeout(t);
        console.log('reset by server ' + req.rstCode);
        session.close();
      });
    } else if (op === 'close') {
      req.write(frame(8, Buffer.from([0x03, 0xe8])));
      recv((o, p) => { console.log('closed ' + (o === 8 ? p.readUInt16BE(0) : 'op' + o)); req.end(); });
    }
  }
});
