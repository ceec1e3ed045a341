// HTTP/2 (h2c) test upstream for t/4xx: node h2-backend.js PORT [MAX_STREAMS]
// (MAX_STREAMS: the SETTINGS_MAX_CONCURRENT_STREAMS it announces)
//   /echo      200, body = md5 of the request body, request trailers echoed as
//              response trailers, the request's te header in x-seen-te
//   /trailers  200 "data" then trailers grpc-status: 0, grpc-message: fine
//   /only      trailers-only: HEADERS with END_STREAM, grpc-status 14
//   /refuse*   REFUSED_STREAM for the first 2 requests of each path, then 200 "third time"
//   /headers   200, the request headers as JSON
//   /big       200, 2 MiB of 'x'
//   /slow      200 "slow" after 300 ms
'use strict';
const http2 = require('http2');
const crypto = require('crypto');

const refused = {};
const server = http2.createServer(process.argv[3] ? { settings: { maxConcurrentStreams: Number(process.argv[3]) } } : {});
server.on('stream', (stream, headers) => {
	const path = headers[':path'];
	stream.on('error', () => {});	// our own REFUSED_STREAM, clients going away
	if (path.startsWith('/refuse') && (refused[path] || 0) < 2) {
		refused[path] = (refused[path] || 0) + 1;
		stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
		return;
	}
	const md5 = crypto.createHash('md5');
	let trailers = null;
	stream.on('trailers', (t) => { trailers = t; });
	stream.on('data', (d) => md5.update(d));
	stream.on('end', () => {
		if (path.startsWith('/echo')) {
			stream.respond({ ':status': 200, 'x-seen-te': headers.te || '' }, { waitForTrailers: true });
			stream.on('wantTrailers', () => {
				const out = {};
				for (const k of Object.keys(trailers || {}))
					if (!k.startsWith(':')) out['x-echo-' + k] = trailers[k];
				out['x-body-done'] = 'yes';
				stream.sendTrailers(out);
			});
			stream.end(md5.digest('hex'));
		} else if (path.startsWith('/trailers')) {
			stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
			stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
			stream.end('data');
		} else if (path.startsWith('/only')) {
			stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
				{ endStream: true });
		} else if (path.startsWith('/refuse')) {
			stream.respond({ ':status': 200 });
			stream.end('third time\n');
		} else if (path.startsWith('/headers')) {
			stream.respond({ ':status': 200, 'content-type': 'application/json' });
			stream.end(JSON.stringify(headers));
		} else if (path.startsWith('/slow')) {
			setTimeout(() => {
				stream.respond({ ':status': 200 });
				stream.end('slow');
			}, 300);
		} else if (path.startsWith('/big')) {
			stream.respond({ ':status': 200 });
			stream.end(Buffer.alloc(2 * 1024 * 1024, 'x'));
		} else {
			stream.respond({ ':status': 404 });
			stream.end('no such path\n');
		}
	});
});
server.listen(Number(process.argv[2]), '127.0.0.1');
