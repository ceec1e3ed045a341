# Traffic policy config (issue 3): every new key is accepted by `wingman -t`
# in a full config, and bad values are refused as FILE:LINE:COL: message on
# the offending line.
use strict;
use warnings;
use Test::More;
use Wingman;

my $good = <<'EOF';
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: web
    address: 127.0.0.1:15006
    routes:
      - name: canary
        match: { prefix: /, headers: { x-canary-test: { exact: "true" } }, query_params: { v: { exact: "2" }, d: { present: true }, r: { regex: "[a-z]+" } } }
        route: { cluster: canary }
        timeout: 10s
        retries: { attempts: 3, per_try_timeout: 2s, retry_on: "5xx,reset,connect-failure,refused-stream", backoff: 25ms }
      - name: codes
        match: { prefix: /codes }
        route: { cluster: was }
        retries: { attempts: 2, retry_on: "503,reset,gateway-error,retriable-4xx,retriable-status-codes,409" }
        timeout: 0s
      - name: rw
        match: { prefix: /old }
        route: { cluster: was }
        rewrite: { prefix: /new, host: was-service }
        headers: { request: { set: { x-a: "1" }, add: { x-b: "2" }, remove: [x-c] }, response: { set: { x-d: "3" } } }
      - name: dr
        match: { path: /maint }
        direct_response: { status: 503, body: "maintenance" }
      - name: rd
        match: { prefix: /go }
        redirect: { host: h.example, path: /p, scheme: https, port: 8443, response_code: 302, strip_query: true }
      - name: rd2
        match: { prefix: /pre }
        redirect: { prefix: /new }
      - name: split
        match: { prefix: /split }
        route: { weighted: [{cluster: was, weight: 90}, {cluster: canary, weight: 10}] }
clusters:
  - name: was
    lb: LEAST_REQUEST
    endpoints: [ "127.0.0.1:8080", { address: "127.0.0.1:8081", weight: 3 } ]
    connection_pool: { max_connections: 100, max_pending_requests: 100, max_requests: 100, max_requests_per_connection: 10, max_retries: 3 }
    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_errors: 0, consecutive_local_origin_failures: 5, split_external_local_origin_errors: false, interval: 10s, base_ejection_time: 30s, max_ejection_percent: 10, min_health_percent: 0 }
  - name: canary
    lb: { type: RING_HASH, hash_on: { header: x-user } }
    endpoints: [127.0.0.1:8082]
  - name: c2
    lb: { type: RING_HASH, hash_on: { cookie: sid } }
    endpoints: [127.0.0.1:8083]
  - name: c3
    lb: { type: RING_HASH, hash_on: { source_ip: true } }
    endpoints: [127.0.0.1:8084]
  - { name: c4, lb: RANDOM, endpoints: [127.0.0.1:8085] }
  - { name: c5, lb: ROUND_ROBIN, endpoints: [127.0.0.1:8086] }
EOF
my ($rc, $out, $file) = wingman_check($good, 'good-109');
is($rc, 0, 'a config using every traffic-policy key passes -t') or diag($out);

my $head = <<'EOF';
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: web
    address: 127.0.0.1:15006
    routes:
EOF
my $tail = <<'EOF';
clusters:
  - name: was
    endpoints: [127.0.0.1:8080]
EOF
my $route = "      - name: r\n        match: { prefix: / }\n";

# name, YAML with the offending line marked "#E", pattern for the message.
my @cases = (
	['retry_on token', $head . $route . "        route: { cluster: was }\n        retries: { attempts: 3, retry_on: \"5xx,bogus-token\" } #E\n" . $tail, qr/bogus-token|retry_on/],
	['attempts negative', $head . $route . "        route: { cluster: was }\n        retries: { attempts: -1, retry_on: \"5xx\" } #E\n" . $tail, qr/./],
	['per_try_timeout', $head . $route . "        route: { cluster: was }\n        retries: { attempts: 1, per_try_timeout: 2 parsecs } #E\n" . $tail, qr/./],
	['retries unknown key', $head . $route . "        route: { cluster: was }\n        retries: { attempts: 1, tries_per_hour: 3 } #E\n" . $tail, qr/tries_per_hour/],
	['route timeout', $head . $route . "        route: { cluster: was }\n        timeout: soon #E\n" . $tail, qr/./],
	['redirect code', $head . $route . "        redirect: { host: a.example, response_code: 200 } #E\n" . $tail, qr/./],
	['redirect unknown key', $head . $route . "        redirect: { hostname: a.example } #E\n" . $tail, qr/hostname/],
	['direct_response status', $head . $route . "        direct_response: { status: 99, body: x } #E\n" . $tail, qr/./],
	['route and direct_response', $head . $route . "        route: { cluster: was }\n        direct_response: { status: 503 } #E\n" . $tail, qr/./, 1],
	['rewrite unknown key', $head . $route . "        route: { cluster: was }\n        rewrite: { regex: x } #E\n" . $tail, qr/regex/],
	['query_params two kinds', $head . "      - name: r\n        match: { prefix: /, query_params: { v: { exact: a, regex: b } } } #E\n        route: { cluster: was }\n" . $tail, qr/./],
	['query_params bad regex', $head . "      - name: r\n        match: { prefix: /, query_params: { v: { regex: \"(\" } } } #E\n        route: { cluster: was }\n" . $tail, qr/./],
	['query_params unknown kind', $head . "      - name: r\n        match: { prefix: /, query_params: { v: { contains: a } } } #E\n        route: { cluster: was }\n" . $tail, qr/contains/],
	['lb type', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    lb: { type: MAGLEV_PLUS } #E\n    endpoints: [127.0.0.1:8080]\n", qr/MAGLEV_PLUS|ROUND_ROBIN|lb|type/],
	['hash_on', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    lb: { type: RING_HASH, hash_on: { query: q } } #E\n    endpoints: [127.0.0.1:8080]\n", qr/query|hash_on/],
	['connection_pool key', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    connection_pool: { max_connections: 5, max_conns: 5 } #E\n    endpoints: [127.0.0.1:8080]\n", qr/max_conns/],
	['connection_pool value', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    connection_pool: { max_connections: -5 } #E\n    endpoints: [127.0.0.1:8080]\n", qr/./],
	['outlier percent', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    outlier_detection: { max_ejection_percent: 150 } #E\n    endpoints: [127.0.0.1:8080]\n", qr/./],
	['outlier interval', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    outlier_detection: { interval: never } #E\n    endpoints: [127.0.0.1:8080]\n", qr/./],
	['outlier key', $head . $route . "        route: { cluster: was }\n" . "clusters:\n  - name: was\n    outlier_detection: { consecutive_errors: 5 } #E\n    endpoints: [127.0.0.1:8080]\n", qr/consecutive_errors/],
);

for my $c (@cases) {
	my ($name, $yaml, $re, $before) = @$c;
	my @lines = split /\n/, $yaml;
	my ($line) = grep { $lines[$_ - 1] =~ /#E$/ } 1 .. @lines;
	# Some errors may name the line of the conflicting key just before.
	$line = '(?:' . join('|', $line - ($before // 0) .. $line) . ')';
	(my $fname = $name) =~ s/\W+/-/g;
	my ($rc, $out, $f) = wingman_check($yaml, "bad-$fname");
	is($rc, 1, "$name: -t exits 1");
	like($out, qr/^\Q$f\E:$line:\d+: /m, "$name: error names line $line") or diag($out);
	my ($msg) = $out =~ /^\Q$f\E:\d+:\d+: (.*)$/m;
	like($msg // '', $re, "$name: message says what is wrong");
}

done_testing;
