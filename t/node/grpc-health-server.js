// gRPC health server for t/140-health-checks.t (@grpc/grpc-js):
//   node grpc-health-server.js PORT STATEFILE
// Plaintext h2c on 127.0.0.1:PORT serving grpc.health.v1.Health/Check. The
// status of the server ("") and of the service "wingman.test.Echo" is the
// first word of STATEFILE, read at every call (SERVING, NOT_SERVING, ...);
// any other service name is NOT_FOUND, as the health protocol says. Each call
// is logged to stdout as "check <service> <authority> <user-agent> <deadline set>".
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const def = loader.loadSync(path.join(__dirname, 'health.proto'), { keepCase: true, enums: String });
const proto = grpc.loadPackageDefinition(def).grpc.health.v1;
const [port, statefile] = process.argv.slice(2);

function check(call, cb) {
	const service = call.request.service;
	const md = call.metadata.getMap();

	const deadline = call.getDeadline();

	console.log('check ' + (service || '-') + ' ' + call.getHost() + ' ' + (md['user-agent'] || '-') + ' ' +
		(deadline instanceof Date || (typeof deadline === 'number' && isFinite(deadline)) ? 'deadline' : 'none'));
	if (service !== '' && service !== 'wingman.test.Echo')
		return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service ' + service });
	let status = 'SERVING';
	try {
		status = fs.readFileSync(statefile, 'utf8').trim().split(/\s+/)[0] || 'UNKNOWN';
	} catch (e) {
		status = 'UNKNOWN';
	}
	cb(null, { status });
}

const server = new grpc.Server();
server.addService(proto.Health.service, { Check: check });
server.bindAsync('127.0.0.1:' + port, grpc.ServerCredentials.createInsecure(), (err) => {
	if (err) {
		console.error(err.message);
		process.exit(1);
	}
	console.log('listening');
});
