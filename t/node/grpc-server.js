// gRPC test server for t/403-grpc.t (@grpc/grpc-js): node grpc-server.js PORT
// Plaintext h2c on 127.0.0.1:PORT; see echo.proto for the modes. Errors before
// any message go out as trailers-only responses (grpc-js does that by itself).
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const def = loader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true });
const proto = grpc.loadPackageDefinition(def).wingman.test;
const calls = {};

function later(call, ms, fn) {
	if (!ms)
		return fn();
	const t = setTimeout(fn, ms);
	call.on('cancelled', () => clearTimeout(t));
}

function unary(call, cb) {
	const r = call.request;
	const n = calls[r.text] = (calls[r.text] || 0) + 1;

	if (r.mode === 'unavailable' || (r.mode === 'flaky' && n === 1))
		return cb({ code: grpc.status.UNAVAILABLE, details: 'try again (call ' + n + ')' });
	later(call, r.delay_ms, () => cb(null, { text: r.text, seq: 0, calls: n }));
}

function stream(call) {
	const r = call.request;
	const n = calls[r.text] = (calls[r.text] || 0) + 1;
	let i = 0;

	if (r.mode === 'unavailable' || (r.mode === 'flaky' && n === 1))
		return call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'try again' });
	const next = () => {
		if (call.cancelled)
			return;
		if (i === r.count) {
			if (r.mode === 'fail-late')
				return call.emit('error', { code: grpc.status.INTERNAL, details: 'broke after ' + i });
			return call.end();
		}
		call.write({ text: r.text, seq: i++, calls: n });
		later(call, r.delay_ms, next);
	};
	next();
}

const server = new grpc.Server();
server.addService(proto.Echo.service, { Unary: unary, Stream: stream });
server.bindAsync('127.0.0.1:' + process.argv[2], grpc.ServerCredentials.createInsecure(), (err) => {
	if (err) {
		console.error(err.message);
		process.exit(1);
	}
	console.log('listening');
});
