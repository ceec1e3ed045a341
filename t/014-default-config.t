# wingman without -c runs its embedded default (conf/wingman.yaml): inbound
# listener 0.0.0.0:15006 → cluster "inbound|8080||" at 127.0.0.1:8080, admin on
# 127.0.0.1:15000, access log on stdout. These ports are fixed, so the test
# skips when any of them is taken.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

for my $p ([15006, '0.0.0.0'], [15000, '127.0.0.1'], [8080, '127.0.0.1']) {
	my $s = IO::Socket::INET->new(LocalAddr => $p->[1], LocalPort => $p->[0], Proto => 'tcp',
		Listen => 1, ReuseAddr => 1);
	plan skip_all => "port $p->[0] is busy; the embedded default config needs 8080, 15000 and 15006" unless $s;
	close $s;
}

my $ng = start_nginx(q{ location / { return 200 "default app\n"; } }, port => 8080);
my $wm = start_wingman('', no_config => 1, ports => [15006], admin_port => 15000);

my $r = http_get(15006, '/hello', headers => ['User-Agent', 'default-test']);
is($r->{status}, 200, 'no -c: :15006 proxies to 127.0.0.1:8080');
is($r->{body}, "default app\n", 'body from the app');

my ($code, $body) = admin_get(15000, '/ready');
is($code, 200, 'admin on 127.0.0.1:15000');
like($body, qr/^LIVE/, '/ready LIVE');
like($wm->admin('/clusters'), qr/^inbound\|8080\|\|::127\.0\.0\.1:8080::rq_total::1$/m,
	'cluster inbound|8080|| with endpoint 127.0.0.1:8080');
like($wm->admin('/stats'), qr/^http\.inbound\.downstream_rq_total: 1$/m, 'listener named inbound');
ok(wait_for(sub { $wm->stdout =~ m{"GET /hello HTTP/1\.1" 200 .*"default-test"} }, scale(5)),
	'access log on stdout in the default format') or diag($wm->stdout);

$ng->stop;
$r = http_get(15006, '/down');
is($r->{status}, 503, 'app down: 503');

is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');
done_testing;
