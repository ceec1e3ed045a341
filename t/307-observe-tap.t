# Live tap: `wingman observe` against a running wingman's admin /tap, with
# traffic of every kind (2xx, 503 UF, 404 NR, RBAC 403, HTTP/2, mTLS): each
# filter (--status, --flags, --path, --from address and principal) keeps
# exactly its requests; --json lines are read by a JSON parser; without
# --follow the last N kept (admin.tap_recent). A watcher that never reads
# while a fixed-size load runs: every request still succeeds, its records are
# dropped, counted (admin.tap.dropped) and said in its stream once it reads.
# Watchers that go away leave admin.tap.watchers at 0. Bad arguments: a
# "wingman: " message naming the argument, exit 2; no admin: exit 1.
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend();
my $bp = $be->port;
my $dead = free_port();
my ($port, $mtls, $admin) = map { free_port() } 1 .. 3;
my $bin = wingman_bin();
my $json = JSON::PP->new;

my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin, tap_recent: 50 }
access_log: { path: off }
listeners:
  - name: front
    address: 127.0.0.1:$port
    routes:
      - { name: served, match: { prefix: /ok }, route: { cluster: be } }
      - { name: refused, match: { prefix: /down }, route: { cluster: dead } }
      - name: secret
        match: { prefix: /secret }
        route: { cluster: be }
        rbac: [{ name: no-secrets, action: DENY, rules: [{ to: [{ operation: { paths: ["/secret*"] } }] }] }]
  - name: mtls
    address: 127.0.0.1:$mtls
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ name: peer, match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF

# `wingman observe ARGS --follow` in the background, writing to NAME.out/.err.
sub watch {
	my ($name, @args) = @_;
	my $pid = Wingman::spawn(cmd => [$bin, 'observe', '--admin', "127.0.0.1:$admin", '--follow', @args],
		stdout => "$dir/$name.out", stderr => "$dir/$name.err", name => "observe $name");
	return { pid => $pid, name => $name };
}

sub watchers { $wm->stat('admin.tap.watchers') // -1 }

# Every kind of request, once each; returns how many.
sub traffic {
	my ($tag) = @_;
	is(http_get($port, "/ok/$tag")->{status}, 200, "$tag: 2xx");
	is(http_get($port, "/down/$tag")->{status}, 503, "$tag: 503 UF");
	is(http_get($port, "/nowhere/$tag")->{status}, 404, "$tag: 404 NR");
	is(http_get($port, "/secret/$tag")->{status}, 403, "$tag: RBAC 403");
	my ($out, $rc, $err) = curl('--http2-prior-knowledge', "http://127.0.0.1:$port/ok/h2-$tag");
	is($rc, 0, "$tag: HTTP/2") or diag($err);
	($out, $rc, $err) = curl('-k', '--cert', "$c/web.pem", '--key', "$c/web-key.pem", "https://127.0.0.1:$mtls/ok/mtls-$tag");
	is($rc, 0, "$tag: mTLS") or diag($err);
	return 6;
}

my %w = (
	all => watch('all', '--json'),
	text => watch('text'),
	s5xx => watch('s5xx', '--json', '--status', '5xx'),
	nr_or_403 => watch('nr_or_403', '--json', '--status', '404,403'),
	uf => watch('uf', '--json', '--flags', 'UF,UO'),
	path => watch('path', '--json', '--path', '^/ok/'),
	local => watch('local', '--json', '--from', '127.0.0.0/8'),
	other => watch('other', '--json', '--from', '10.0.0.0/8,::1'),
	peer => watch('peer', '--json', '--from', 'cluster.local/ns/blog-system/*'),
);
ok(wait_for(sub { watchers() == keys %w }, scale(5)), 'admin.tap.watchers counts the watchers') or diag(watchers());
my $n = traffic('a');
ok(wait_for(sub { (() = slurp("$dir/all.out") =~ /\n/g) >= $n }, scale(5)), 'every request reached the watcher');
sleep 0.3;	# a record that matched nothing had its chance to show up
Wingman::stop_process($_->{pid}, "INT") for values %w;
ok(wait_for(sub { watchers() == 0 }, scale(5)), 'watchers gone: admin.tap.watchers back to 0');

# The JSON records a watcher printed, by path.
sub records {
	my ($name) = @_;
	my @r;
	for my $l (split /\n/, slurp("$dir/$name.out")) {
		my $o = eval { $json->decode($l) };
		ok($o, "$name: a JSON line") or diag($l);
		push @r, $o if $o;
	}
	return @r;
}

sub paths { join ' ', sort map { $_->{path} } @_ }

my @all = records('all');
is(scalar @all, $n, 'all: one record per request');
is(paths(@all), '/down/a /nowhere/a /ok/a /ok/h2-a /ok/mtls-a /secret/a', 'all: every request');
my %by = map { $_->{path} => $_ } @all;
is_deeply([@{ $by{'/ok/a'} }{qw(method response_code response_flags route_name upstream_cluster destination protocol)}],
	['GET', 200, '-', 'served', 'be', "127.0.0.1:$bp", 'HTTP/1.1'], '2xx: the record');
like($by{'/ok/a'}{source}, qr{^127\.0\.0\.1:\d+$}, '2xx: the source');
like($by{'/ok/a'}{request_id}, qr{^[0-9a-f-]{36}$}, '2xx: the request id');
is($json->encode([$by{'/ok/a'}{duration}, $by{'/ok/a'}{response_code}]) =~ /^\[\d+,200\]$/ ? 1 : 0, 1,
	'duration and response_code are numbers');
is_deeply([@{ $by{'/down/a'} }{qw(response_code response_flags upstream_cluster)}], [503, 'UF', 'dead'], '503 UF');
is_deeply([@{ $by{'/nowhere/a'} }{qw(response_code response_flags route_name destination)}], [404, 'NR', undef, undef],
	'404 NR: no route, no destination (null)');
is_deeply([@{ $by{'/secret/a'} }{qw(response_code response_code_details)}],
	[403, 'rbac_access_denied_matched_policy[no-secrets]'], 'RBAC 403');
is($by{'/ok/h2-a'}{protocol}, 'HTTP/2', 'HTTP/2');
is($by{'/ok/mtls-a'}{principal}, 'spiffe://cluster.local/ns/blog-system/sa/default', 'mTLS: the principal');
is($by{'/ok/a'}{principal}, undef, 'plaintext: no principal (null)');

is(paths(records('s5xx')), '/down/a', '--status 5xx');
is(paths(records('nr_or_403')), '/nowhere/a /secret/a', '--status 404,403');
is(paths(records('uf')), '/down/a', '--flags UF,UO');
is(paths(records('path')), '/ok/a /ok/h2-a /ok/mtls-a', '--path ^/ok/');
is(scalar(records('local')), $n, '--from 127.0.0.0/8: every request');
is(scalar(records('other')), 0, '--from another network: none');
is(paths(records('peer')), '/ok/mtls-a', '--from a principal prefix: the mTLS request');

my @lines = split /\n/, slurp("$dir/text.out");
is(scalar @lines, $n, 'text: one line per request');
my $ts = qr{\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z};
like((grep { m{ /down/a } } @lines)[0], qr{^$ts 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:$dead GET /down/a 503 UF \d+ms -$},
	'text: time, source, destination, method, path, status, flags, duration, trace id');
like((grep { m{/mtls-a} } @lines)[0], qr{^$ts 127\.0\.0\.1:\d+\(spiffe://cluster\.local/ns/blog-system/sa/default\) -> },
	'text: the principal beside the source');
is(slurp("$dir/text.err"), '', 'text: nothing on stderr');

# ---- without --follow: the last N kept
my $out = `$bin observe --admin 127.0.0.1:$admin --last 2 --status 5xx,4xx --json 2>&1`;
is($? >> 8, 0, '--last: exit 0');
is(paths(map { $json->decode($_) } split /\n/, $out), '/nowhere/a /secret/a', '--last 2 of the kept 4xx/5xx, newest last')
	or diag($out);
$out = `$bin observe --admin 127.0.0.1:$admin 2>&1`;
is(scalar(() = $out =~ /\n/g), $n, 'default: the last requests kept, one line each') or diag($out);

# ---- a watcher that never reads, under a fixed-size load
SKIP: {
	skip 'h2load missing (Debian nghttp2-client)', 8 unless have_prog('h2load');
	my $slow = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$admin", Proto => 'tcp') or die "connect: $!";
	setsockopt($slow, SOL_SOCKET, SO_RCVBUF, 4096);
	print $slow "GET /tap?follow HTTP/1.1\r\nHost: t\r\n\r\n";
	ok(wait_for(sub { watchers() == 1 }, scale(5)), 'slow watcher registered');
	my $before = $wm->stat('http.front.downstream_rq_2xx') // 0;
	my $total = 20000;
	my $load = `h2load --h1 -n $total -c 8 -t 1 http://127.0.0.1:$port/ok/load 2>&1`;
	like($load, qr{requests: $total total, $total started, $total done, $total succeeded, 0 failed}, 'every request of the load succeeded')
		or diag($load);
	ok(wait_for(sub { ($wm->stat('http.front.downstream_rq_2xx') // 0) - $before == $total }, scale(5)),
		'... and each was counted once');
	my $dropped = $wm->stat('admin.tap.dropped') // 0;
	ok($dropped > 0, "records the watcher could not take were dropped and counted ($dropped)");
	ok(watchers() == 1, 'the slow watcher is still there');
	# Once it reads, its stream says how many it lost.
	my $got = '';
	my $sel = IO::Select->new($slow);
	my $until = time + scale(20);
	while ($got !~ /\{"dropped":\d+\}/ && time < $until) {
		next unless $sel->can_read(0.5);
		last unless sysread($slow, my $buf, 65536);
		$got .= $buf;
	}
	ok($got =~ /\{"dropped":\d+\}/, 'its stream says how many it lost')
		or diag(length($got) . ' bytes read: ' . substr($got, -300));
	my $said = 0;
	$said += $_ for $got =~ /\{"dropped":(\d+)\}/g;
	ok($said > 0 && $said <= $dropped, "... $said of the $dropped dropped");
	close $slow;
	ok(wait_for(sub { watchers() == 0 }, scale(5)), 'it went away: admin.tap.watchers back to 0');
}

# ---- arguments and exit status
sub observe_err {
	my (@args) = @_;
	my $o = `$bin observe --admin 127.0.0.1:$admin @args 2>&1 >/dev/null`;
	return ($? >> 8, $o);
}
my ($rc, $err) = observe_err('--status', '9xx');
is($rc, 2, 'bad --status: exit 2');
like($err, qr{^wingman: --status: "9xx" is not a status code \(503\) or class \(5xx\)$}, 'bad --status: named');
($rc, $err) = observe_err('--flags', 'UF,ZZ');
like($err, qr{^wingman: --flags: "ZZ" is not one of Envoy's response flags}, 'bad --flags: named');
($rc, $err) = observe_err('--from', 'web');
like($err, qr{^wingman: --from: "web" is not an address, a CIDR or a principal}, 'bad --from: named');
($rc, $err) = observe_err('--path', "'('");
like($err, qr{^wingman: --path: "\(" is not an RE2 regex}, 'bad --path: named');
($rc, $err) = observe_err('--last', '2', '--follow');
is($rc, 2, '--last with --follow: exit 2');
($rc, $err) = observe_err('--nope');
like($err, qr{^wingman: observe: unknown option "--nope"}, 'unknown option: named, exit ' . $rc);
$out = `$bin observe --help 2>&1`;
like($out, qr{^usage: wingman observe .*Exit status: 0 done}s, '--help: usage and exit status');
$out = `$bin observe --admin 127.0.0.1:$dead 2>&1`;
is($? >> 8, 1, 'no admin there: exit 1');
like($out, qr{^wingman: cannot reach the admin at 127\.0\.0\.1:$dead}, 'no admin there: said');
is((admin_get($admin, '/tap?status=600'))[0], 400, '/tap: a bad filter is a 400');

is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');
done_testing;
