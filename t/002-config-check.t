# `wingman -t -c FILE` validates and exits 0/1, printing FILE:LINE:COL: message
# naming the right line for each kind of error.
use strict;
use warnings;
use Test::More;
use Wingman;

my $dir = tmpdir();
my $n = 0;

# Runs wingman with @args; returns (exit code, stdout+stderr).
sub run_wingman {
	my (@args) = @_;
	my $out = "$dir/run-" . $n++ . ".out";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>', $out);
		open(STDERR, '>&', \*STDOUT);
		{ exec(wingman_bin(), @args) }
		POSIX::_exit(127);
	}
	my $ok = wait_for(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, scale(10));
	unless ($ok) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
		return (-1, slurp($out));
	}
	return ($? >> 8, slurp($out));
}

sub conf {
	my ($name, $text) = @_;
	return spew("$dir/$name.yaml", $text);
}

my $good = conf('good', <<'EOF');
node: { id: web-0, cluster: web.blog-system }
workers: 2
drain_timeout: 5s
admin: { address: 127.0.0.1:15000 }
access_log: { path: /dev/stdout }
listeners:
  - name: inbound
    address: 0.0.0.0:15006
    virtual_hosts:
      - name: default
        domains: ["*", "*.example.com", "api.*"]
        routes:
          - name: api
            match: { prefix: /api, headers: { x-canary: { exact: "yes" } }, methods: [GET, POST] }
            route: { cluster: was }
          - name: weighted
            match: { regex: "/w/[0-9]+" }
            route: { weighted: [{cluster: was, weight: 90}, {cluster: web, weight: 10}] }
          - name: rest
            match: { path: /exact }
            route: { cluster: web }
  - name: second
    address: "[::1]:15007"
    routes:
      - name: all
        match: { prefix: / }
        route: { cluster: web }
clusters:
  - name: was
    endpoints: [127.0.0.1:8080, "was-service.blog-system.svc.cluster.local:8080"]
    connect_timeout: 1s
    lb: ROUND_ROBIN
  - name: web
    endpoints: [127.0.0.1:8081]
EOF

my ($rc, $out) = run_wingman('-t', '-c', $good);
is($rc, 0, 'a good config: -t exits 0') or diag($out);
unlike($out, qr/\Q$good\E:\d+:\d+:/, 'no located error for a good config');

($rc, $out) = run_wingman('--check-config', '-c', $good);
is($rc, 0, '--check-config exits 0 too') or diag($out);

my $base_cluster = <<'EOF';
clusters:
  - name: web
    endpoints: [127.0.0.1:8081]
EOF

# Each case: name, text, the line the error must name, a pattern the message must match.
my @cases = (
	['yaml-syntax', <<'EOF' . $base_cluster, 6, qr/./],
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: a
    address: 127.0.0.1:15006
    routes:
      - name: x: y
        match: { prefix: / }
        route: { cluster: web }
EOF
	['unknown-key', <<'EOF' . $base_cluster, 5, qr/bogus_key/],
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: a
    address: 127.0.0.1:15006
    bogus_key: 1
    routes:
      - name: x
        match: { prefix: / }
        route: { cluster: web }
EOF
	['unknown-cluster', <<'EOF' . $base_cluster, 7, qr/nosuchcluster/],
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: a
    address: 127.0.0.1:15006
    routes:
      - match: { prefix: / }
        route: { cluster: nosuchcluster }
EOF
	['duplicate-listener', <<'EOF' . $base_cluster, 7, qr/(?i)duplicate|already|"a"/],
listeners:
  - name: a
    address: 127.0.0.1:15006
    routes:
      - match: { prefix: / }
        route: { cluster: web }
  - name: a
    address: 127.0.0.1:15007
    routes:
      - match: { prefix: / }
        route: { cluster: web }
EOF
	['bad-address', <<'EOF' . $base_cluster, 3, qr/./],
listeners:
  - name: a
    address: 127.0.0.1:notaport
    routes:
      - match: { prefix: / }
        route: { cluster: web }
EOF
	['bad-port', <<'EOF' . $base_cluster, 4, qr/./],
admin: { address: 127.0.0.1:15000 }
listeners:
  - name: a
    address: 127.0.0.1:99999
    routes:
      - match: { prefix: / }
        route: { cluster: web }
EOF
	['bad-duration', <<'EOF' . $base_cluster, 2, qr/./],
workers: 1
drain_timeout: 5 parsecs
listeners:
  - name: a
    address: 127.0.0.1:15006
    routes:
      - match: { prefix: / }
        route: { cluster: web }
EOF
	['bad-connect-timeout', <<'EOF', 9, qr/./],
listeners:
  - name: a
    address: 127.0.0.1:15006
    routes:
      - match: { prefix: / }
        route: { cluster: web }
clusters:
  - name: web
    connect_timeout: -1s
    endpoints: [127.0.0.1:8081]
EOF
);

for my $c (@cases) {
	my ($name, $text, $line, $re) = @$c;
	my $f = conf($name, $text);
	my ($rc, $out) = run_wingman('-t', '-c', $f);
	is($rc, 1, "$name: -t exits 1");
	like($out, qr/^\Q$f\E:$line:\d+: /m, "$name: error names $f line $line") or diag($out);
	my ($msg) = $out =~ /^\Q$f\E:\d+:\d+: (.*)$/m;
	like($msg // '', $re, "$name: message says what is wrong");
}

# Several errors in one file are all reported.
my $multi = conf('multi', <<'EOF');
listeners:
  - name: a
    address: 127.0.0.1:15006
    unknown_one: 1
    routes:
      - match: { prefix: / }
        route: { cluster: missing }
clusters:
  - name: web
    endpoints: [127.0.0.1:8081]
    unknown_two: 2
EOF
($rc, $out) = run_wingman('-t', '-c', $multi);
is($rc, 1, 'multiple errors: exit 1');
like($out, qr/^\Q$multi\E:4:\d+: /m, 'first error reported');
like($out, qr/^\Q$multi\E:11:\d+: /m, 'second error reported too');

# A missing file is an error, not a crash.
($rc, $out) = run_wingman('-t', '-c', "$dir/does-not-exist.yaml");
is($rc, 1, 'missing file: exit 1');
like($out, qr/does-not-exist\.yaml/, 'missing file is named');

# Running (not -t) on a broken file refuses to start.
my $bad = "$dir/unknown-key.yaml";
($rc, $out) = run_wingman('-c', $bad);
isnt($rc, 0, 'wingman -c on a broken file exits non-zero');
like($out, qr/^\Q$bad\E:5:\d+: /m, 'and says where');

($rc, $out) = run_wingman('--version');
is($rc, 0, '--version exits 0');
like($out, qr/wingman.*\d+\.\d+\.\d+/i, '--version prints the version');

done_testing;
