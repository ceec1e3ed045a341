// gRPC test client for t/403-grpc.t (@grpc/grpc-js), plaintext h2c:
//   node grpc-client.js HOST:PORT Unary|Stream '{"text":…}' [DEADLINE_MS]
// Prints one JSON line {code, details, messages: [...]} whatever happens.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const proto = grpc.loadPackageDefinition(def).wingman.test;
const [addr, method, json, deadline_ms] = process.argv.slice(2);
const client = new proto.Echo(addr, grpc.credentials.createInsecure());
const opts = deadline_ms ? { deadline: Date.now() + Number(deadline_ms) } : {};
const req = JSON.parse(json || '{}');
const messages = [];
const start = Date.now();

function done(err) {
	console.log(JSON.stringify({ code: err ? err.code : 0, details: err ? err.details : '', messages,
		ms: Date.now() - start }));
	client.close();
}

if (method === 'Unary') {
	client.Unary(req, new grpc.Metadata(), opts, (err, resp) => {
		if (resp)
			messages.push(resp);
		done(err);
	});
} else {
	const call = client.Stream(req, new grpc.Metadata(), opts);
	let failed = null;
	call.on('data', (m) => messages.push(m));
	call.on('error', (e) => { failed = e; });
	call.on('status', (s) => done(failed || (s.code ? s : null)));
}
