// An OTLP/HTTP trace collector for the tests: node otlp-collector.js PORT [STATUS]
// Decodes each POSTed body with the official OpenTelemetry protobuf
// definitions (@opentelemetry/otlp-transformer's generated root) and prints
// one JSON line per report on stdout:
//   { method, path, headers, size, canonical, request }
// request is ExportTraceServiceRequest as protobufjs's toObject() gives it
// (enums as names, 64-bit integers as decimal strings), ids in lower-case
// hex; canonical says whether re-encoding the decoded message gives back the
// very bytes posted, which fails if a string was not valid UTF-8 (protobufjs
// decodes it lossily) or the encoding was not the standard one. A body that
// does not decode prints { ..., error }. Answers STATUS (default 200) with an
// empty ExportTraceServiceResponse.
'use strict';
const http = require('http');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const Response = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
const status = Number(process.argv[3] || 200);

function hexIds(req) {
	for (const rs of req.resourceSpans || [])
		for (const ss of rs.scopeSpans || [])
			for (const s of ss.spans || [])
				for (const k of ['traceId', 'spanId', 'parentSpanId'])
					if (s[k] !== undefined)
						s[k] = Buffer.from(s[k]).toString('hex');
	return req;
}

http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const body = Buffer.concat(chunks);
		const out = { method: req.method, path: req.url, headers: req.headers, size: body.length };
		try {
			const msg = Request.decode(body);
			out.canonical = Buffer.compare(Buffer.from(Request.encode(msg).finish()), body) === 0;
			out.request = hexIds(Request.toObject(msg, { enums: String, longs: String, bytes: Array }));
		} catch (e) {
			out.error = String(e);
		}
		process.stdout.write(JSON.stringify(out) + '\n');
		res.writeHead(status, { 'content-type': 'application/x-protobuf' });
		res.end(Buffer.from(Response.encode(Response.create({})).finish()));
	});
}).listen(Number(process.argv[2]), '127.0.0.1');
