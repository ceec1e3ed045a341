# Traffic policy, outlier detection (issue 3): consecutive 5xx eject a host
# (/clusters health_flags::/failed_outlier_check, ejections_enforced_total,
# ejections_active), traffic avoids it, it returns after base_ejection_time and
# stays out longer the next time; counters reset on success; gateway errors;
# local-origin failures (split or not); max_ejection_percent; every host
# ejected → 503 "no healthy upstream" UH unless min_health_percent panics.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

my $dead = free_port();
my %b;
$b{good} = start_backend(id => 'good');
$b{bad} = start_backend(id => 'bad', mode => '503');
$b{flaky} = start_backend(id => 'flaky', script => [('503') x 4, '200', ('503') x 4, '200'], mode => '503');
$b{x1} = start_backend(id => 'x1', mode => '503');
$b{x2} = start_backend(id => 'x2', mode => '503');
$b{p1} = start_backend(id => 'p1', mode => '503');
$b{p2} = start_backend(id => 'p2', mode => '503');
$b{m1} = start_backend(id => 'm1', mode => '503');
$b{m2} = start_backend(id => 'm2', mode => '503');
$b{g500} = start_backend(id => 'g500', mode => '500');
$b{g502} = start_backend(id => 'g502', mode => '502');
$b{lgood} = start_backend(id => 'lgood');
$b{sgood} = start_backend(id => 'sgood');
$b{dgood} = start_backend(id => 'dgood');
$b{dbad} = start_backend(id => 'dbad', mode => '503');
$b{kgood} = start_backend(id => 'kgood');
$b{kbad} = start_backend(id => 'kbad', mode => '503');
my %p = map { $_ => $b{$_}->port } keys %b;
my $wm = start_web(<<"EOF", access_log => 'access-107.log', log_format => '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)% %UPSTREAM_HOST%\n');
    routes:
      - { match: { prefix: /od/ }, route: { cluster: od } }
      - { match: { prefix: /flaky/ }, route: { cluster: flaky } }
      - { match: { prefix: /all/ }, route: { cluster: all } }
      - { match: { prefix: /panic/ }, route: { cluster: panic } }
      - { match: { prefix: /maxej/ }, route: { cluster: maxej } }
      - { match: { prefix: /g500/ }, route: { cluster: g500 } }
      - { match: { prefix: /g502/ }, route: { cluster: g502 } }
      - { match: { prefix: /local/ }, route: { cluster: local } }
      - { match: { prefix: /split/ }, route: { cluster: split } }
      - { match: { prefix: /deflt/ }, route: { cluster: deflt } }
      - { match: { prefix: /decay/ }, route: { cluster: decay } }
clusters:
  - name: od
    endpoints: [127.0.0.1:$p{good}, 127.0.0.1:$p{bad}]
    outlier_detection: { consecutive_5xx: 5, interval: 500ms, base_ejection_time: 2s, max_ejection_percent: 50 }
  - name: flaky
    endpoints: [127.0.0.1:$p{flaky}]
    outlier_detection: { consecutive_5xx: 5, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 100 }
  - name: all
    endpoints: [127.0.0.1:$p{x1}, 127.0.0.1:$p{x2}]
    outlier_detection: { consecutive_5xx: 2, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 100, min_health_percent: 0 }
  - name: panic
    endpoints: [127.0.0.1:$p{p1}, 127.0.0.1:$p{p2}]
    outlier_detection: { consecutive_5xx: 2, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 100, min_health_percent: 50 }
  - name: maxej
    endpoints: [127.0.0.1:$p{m1}, 127.0.0.1:$p{m2}]
    outlier_detection: { consecutive_5xx: 2, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }
  - name: g500
    endpoints: [127.0.0.1:$p{g500}]
    outlier_detection: { consecutive_5xx: 0, consecutive_gateway_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 100 }
  - name: g502
    endpoints: [127.0.0.1:$p{g502}]
    outlier_detection: { consecutive_5xx: 0, consecutive_gateway_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 100 }
  - name: local
    connect_timeout: 1s
    endpoints: [127.0.0.1:$dead, 127.0.0.1:$p{lgood}]
    outlier_detection: { consecutive_5xx: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }
  - name: split
    connect_timeout: 1s
    endpoints: [127.0.0.1:$dead, 127.0.0.1:$p{sgood}]
    outlier_detection:
      consecutive_5xx: 100
      consecutive_local_origin_failures: 2
      split_external_local_origin_errors: true
      interval: 200ms
      base_ejection_time: 30s
      max_ejection_percent: 50
  - name: deflt
    endpoints: [127.0.0.1:$p{dbad}, 127.0.0.1:$p{dgood}]
    outlier_detection: { consecutive_5xx: 2, interval: 200ms, base_ejection_time: 30s }
  - name: decay
    endpoints: [127.0.0.1:$p{kgood}, 127.0.0.1:$p{kbad}]
    outlier_detection: { consecutive_5xx: 2, interval: 200ms, base_ejection_time: 1s, max_ejection_percent: 50 }
EOF
my $port = $wm->port;

sub flags_of {
	my ($host) = @_;
	return $host->{health_flags} // '(missing)';
}

sub ejected {
	my ($cluster, $addr) = @_;
	return flags_of($wm->cluster_hosts($cluster)->{$addr}) =~ /failed_outlier_check/;
}

sub od_stat {
	my ($c, $leaf) = @_;
	return $wm->stat("cluster.$c.outlier_detection.$leaf");
}

sub ids {
	my ($path, $n) = @_;
	return map { http_get($port, "$path$_")->{headers}{'x-backend-id'} // 'local' } 1 .. $n;
}

# ---- 5 consecutive 5xx eject the bad host; traffic avoids it; it comes back.
my $bad = "127.0.0.1:$p{bad}";
my $good = "127.0.0.1:$p{good}";
is(flags_of($wm->cluster_hosts('od')->{$bad}), 'healthy', 'before: the bad host is listed healthy');
my @ids = ids('/od/a', 10);
is($b{bad}->count, 5, 'round robin sent the bad host 5 requests, each a 503');
my $t_ej;
ok(wait_for(sub { ejected('od', $bad) }, 0.8), 'after 5 consecutive 5xx: health_flags::/failed_outlier_check')
	or diag($wm->admin('/clusters'));
$t_ej = time;
is(flags_of($wm->cluster_hosts('od')->{$bad}), '/failed_outlier_check', "Envoy's flag text");
is(flags_of($wm->cluster_hosts('od')->{$good}), 'healthy', 'the good host stays healthy');
is(od_stat('od', 'ejections_enforced_total'), 1, 'outlier_detection.ejections_enforced_total = 1');
is(od_stat('od', 'ejections_active'), 1, 'outlier_detection.ejections_active = 1');
@ids = ids('/od/b', 20);
is(join(',', sort keys %{ { map { $_ => 1 } @ids } }), 'good', 'while ejected every request goes to the good host');
is($b{bad}->count, 5, 'the ejected host got no traffic');
my $back = wait_for(sub { !ejected('od', $bad) }, scale(4), 0.05);
my $t_back = time;
ok($back, 'the host returns after base_ejection_time');
ok($t_back - $t_ej >= 1.6, sprintf('not before base_ejection_time (2s): back after %.2fs', $t_back - $t_ej));
ok($t_back - $t_ej <= scale(3.2), sprintf('within base_ejection_time + interval: %.2fs', $t_back - $t_ej));
is(od_stat('od', 'ejections_active'), 0, 'ejections_active back to 0');
$b{bad}->reset;
@ids = ids('/od/c', 4);
ok($b{bad}->count >= 1, 'traffic reaches the host again');
# It still fails: ejected again after 5 more, well within one interval of its
# return (so the multiplier had no healthy sweep to decay), for 2 x base.
ids('/od/d', 12);
ok(wait_for(sub { ejected('od', $bad) }, 0.8), 'ejected again after 5 more 5xx');
my $t_ej2 = time;
is(od_stat('od', 'ejections_enforced_total'), 2, 'ejections_enforced_total = 2');
# The second ejection lasts 2 x base_ejection_time: timed here, while nothing
# else runs (3.6 s is 4 s less the 0.4 s of observation the first one allows).
# It was checked after the sections below, which take more than those 4 s on
# a loaded machine: the host was back by then and "still out after 2.6s" failed.
$back = wait_for(sub { !ejected('od', $bad) }, scale(6), 0.05);
my $d2 = time - $t_ej2;
ok($back && $d2 >= 3.6, sprintf('second ejection lasts longer than the first (2 x base: back after %.2fs)', $d2));

# ---- consecutive counters reset on success: 4 x 503, 200, 4 x 503, 200 never ejects.
my @st = map { http_get($port, "/flaky/$_")->{status} } 1 .. 10;
is(join(',', @st), '503,503,503,503,200,503,503,503,503,200', 'flaky host answered as scripted');
sleep 0.3;
is(od_stat('flaky', 'ejections_enforced_total'), 0, 'a success resets the consecutive 5xx count');
is(flags_of($wm->cluster_hosts('flaky')->{"127.0.0.1:$p{flaky}"}), 'healthy', 'flaky host still healthy');
http_get($port, "/flaky/more$_") for 1 .. 5;
ok(wait_for(sub { od_stat('flaky', 'ejections_enforced_total') == 1 }, 0.8), 'five in a row eject it');

# ---- every host ejected, min_health_percent 0: 503 no healthy upstream, UH.
http_get($port, "/all/$_") for 1 .. 4;
ok(wait_for(sub { od_stat('all', 'ejections_active') == 2 }, 0.8), 'both hosts of "all" ejected');
my $r = http_get($port, '/all/after');
is($r->{status}, 503, 'every host ejected: 503');
is($r->{body}, 'no healthy upstream', "Envoy's body");
like($wm->log_line(qr{ /all/after }), qr{^503 UH all /all/after }, 'access log flag UH');
is($b{x1}->count + $b{x2}->count, 4, 'no request reached an ejected host');
# The single flaky host (max_ejection_percent 100) is out too.
$r = http_get($port, '/flaky/ejected');
is("$r->{status} $r->{body}", '503 no healthy upstream', 'a one-host cluster with its host ejected: no healthy upstream');

# ---- min_health_percent 50: with every host ejected the cluster panics and uses them all.
http_get($port, "/panic/$_") for 1 .. 4;
ok(wait_for(sub { od_stat('panic', 'ejections_active') == 2 }, 0.8), 'both hosts of "panic" ejected');
$b{p1}->reset;
$b{p2}->reset;
my %seen;
for (1 .. 6) {
	$r = http_get($port, "/panic/after$_");
	$seen{ $r->{headers}{'x-backend-id'} // $r->{body} }++;
}
is(join(',', sort keys %seen), 'p1,p2', 'panic: requests still go to the (ejected) hosts');
is($b{p1}->count + $b{p2}->count, 6, 'panic: every request reached a host');

# ---- max_ejection_percent 50 of 2 hosts: only one is ejected, ever.
http_get($port, "/maxej/$_") for 1 .. 12;
sleep 0.3;
is(od_stat('maxej', 'ejections_active'), 1, 'max_ejection_percent 50: one of two hosts ejected');
is($wm->stat('cluster.maxej.outlier_detection.ejections_enforced_total'), 1, 'only one ejection enforced');

# ---- max_ejection_percent default (10%) still lets one host out.
http_get($port, "/deflt/$_") for 1 .. 6;
ok(wait_for(sub { ejected('deflt', "127.0.0.1:$p{dbad}") }, 0.8), 'default max_ejection_percent: one host may always be ejected');

# ---- consecutive_gateway_errors: 502 counts, 500 does not (consecutive_5xx 0 = off).
http_get($port, "/g500/$_") for 1 .. 6;
sleep 0.3;
is(od_stat('g500', 'ejections_enforced_total'), 0, 'consecutive_gateway_errors ignores 500');
http_get($port, "/g502/$_") for 1 .. 3;
ok(wait_for(sub { od_stat('g502', 'ejections_enforced_total') == 1 }, 0.8), 'three 502 in a row eject');

# ---- local-origin failures (connection refused) count as 5xx when not split.
@st = map { http_get($port, "/local/$_")->{status} } 1 .. 6;
is(scalar(grep { $_ == 503 } @st), 3, 'three connect failures (503 UF) on the dead endpoint');
ok(wait_for(sub { ejected('local', "127.0.0.1:$dead") }, 0.8), 'the dead endpoint is ejected after 3 connect failures');
@st = map { http_get($port, "/local/after$_")->{status} } 1 .. 6;
is(join(',', @st), '200,200,200,200,200,200', 'then every request succeeds');

# ... and with split_external_local_origin_errors, consecutive_local_origin_failures decides.
@st = map { http_get($port, "/split/$_")->{status} } 1 .. 4;
is(scalar(grep { $_ == 503 } @st), 2, 'two connect failures');
ok(wait_for(sub { ejected('split', "127.0.0.1:$dead") }, 0.8),
	'split: ejected after consecutive_local_origin_failures 2');
@st = map { http_get($port, "/split/after$_")->{status} } 1 .. 4;
is(join(',', @st), '200,200,200,200', 'then every request succeeds');

# ---- the multiplier decays while the host stays healthy: ejected (1 s), back,
# three healthy intervals without traffic, ejected again → 1 s, not 2 s.
my $kbad = "127.0.0.1:$p{kbad}";
http_get($port, "/decay/a$_") for 1 .. 4;
ok(wait_for(sub { ejected('decay', $kbad) }, 0.8), 'decay: first ejection');
ok(wait_for(sub { !ejected('decay', $kbad) }, scale(2.5), 0.05), 'decay: back after base_ejection_time');
sleep 0.7;
http_get($port, "/decay/b$_") for 1 .. 4;
ok(wait_for(sub { ejected('decay', $kbad) }, 0.8), 'decay: second ejection');
my $t_k = time;
ok(wait_for(sub { !ejected('decay', $kbad) }, scale(3), 0.05), 'decay: back again');
my $dk = time - $t_k;
ok($dk >= 0.75 && $dk < 1.65, sprintf('decayed multiplier: the second ejection lasted base_ejection_time (%.2fs), not 2x', $dk));

ok($wm->alive, 'wingman still running');
done_testing;
