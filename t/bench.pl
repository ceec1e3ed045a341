#!/usr/bin/perl
# `make bench`: one nginx backend (1 worker, small fixed body), and in front of
# it, in the same run, wingman (1 worker, no access log), nginx as a reverse
# proxy (1 worker, upstream keepalive 64) and HAProxy (nbthread 1, http-reuse
# always). wrk -t2 -c64 (keep-alive) drives each, and the backend directly as a
# reference. Prints a Markdown table with rps, p50/p99 latency, wingman's RSS
# idle and under load, and the ratios wingman/nginx and wingman/HAProxy.
#
# Two more wingmen, with Istio metrics on and tracing at 100% sampling, run
# too, to show what observability costs against the plain one: one with
# Zipkin, one with OpenTelemetry (OTLP/HTTP protobuf); an nginx answering 202
# stands in for both collectors. Their CPU per request against the plain
# wingman is the median of per-round ratios (each pair runs back to back).
#
# Each target runs BENCH_ROUNDS times, interleaved, and the median round is
# reported, because a 2-CPU machine shared by wrk, the backend and the proxy is
# noisy; ratios between wingman configurations are the median of per-round
# ratios. CPU time per request of each proxy process (user + system, all
# threads, from /proc) is reported too: it is the steadier efficiency figure.
#
# TLS rows, same certificates (t/lib/mkcerts.sh) for wingman and HAProxy:
# requests/s over keep-alive SIMPLE TLS (wrk has no client certificates), and
# full mTLS handshakes/s against STRICT / "verify required" listeners with
# `openssl s_time -new` (one client process, so it measures the pair; the
# ratio is what matters).
#
# Environment: BENCH_DURATION (seconds per round, default 5), BENCH_CONNECTIONS (64),
# BENCH_ROUNDS (3), BENCH_ONLY=tracing (just the backend, the plain wingman
# and the two traced ones, and their ratios: the quick check of tracing's cost).
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use Wingman;
use WingmanBench;

my $only = $ENV{BENCH_ONLY} // '';
die "bench: BENCH_ONLY may only be \"tracing\"\n" if $only && $only ne 'tracing';
my $duration = $ENV{BENCH_DURATION} // 5;
my $conns = $ENV{BENCH_CONNECTIONS} // 64;
my $rounds = $ENV{BENCH_ROUNDS} // 3;

for my $p (qw(wrk haproxy)) {
	die "bench: $p not found (./bootstrap deps installs it)\n" unless have_prog($p);
}

my $body = 'hello from the backend';
my $backend = start_nginx(qq{
	access_log off;
	location / { return 200 "$body"; }
});
my $bp = $backend->port;

my $c = test_certs();
spew("$c/was-full.pem", slurp("$c/was.pem") . slurp("$c/was-key.pem"));
my ($wport, $wadmin, $wtls, $wmtls, $wpol, $wh2) = map { free_port() } 1 .. 6;
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$wadmin }
access_log: { path: off }
listeners:
  - name: bench
    address: 127.0.0.1:$wport
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
  - name: bench-tls
    address: 127.0.0.1:$wtls
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem }
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
  - name: bench-mtls
    address: 127.0.0.1:$wmtls
    tls: { mode: STRICT, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
  - name: bench-h2
    address: 127.0.0.1:$wh2
    protocol: http2
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
  - name: bench-policy
    address: 127.0.0.1:$wpol
    routes:
      - name: all
        match: { prefix: / }
        route: { cluster: backend-policy }
        timeout: 10s
        retries: { attempts: 3, per_try_timeout: 2s, retry_on: "5xx,reset,connect-failure" }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$bp] }
  - name: backend-policy
    endpoints: [127.0.0.1:$bp]
    outlier_detection: { consecutive_5xx: 5, interval: 10s, base_ejection_time: 30s }
EOF

# The Zipkin collector stand-in: accepts every POST of spans with 202.
my $collector = start_nginx(q{
	access_log off;
	client_max_body_size 64m;
	location / { return 202; }
});
my $cport = $collector->port;
my $oport = free_port();
my $oadmin = free_port();
# A wingman with Istio metrics and the tracer $tracing (flow-style YAML), on $port.
sub start_traced {
	my ($port, $admin, $tracing) = @_;
	return start_wingman(<<"EOF");
workers: 1
node: { id: bench-1, cluster: bench, workload: bench-v1, namespace: bench, version: v1 }
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
tracing: $tracing
istio_metrics: true
listeners:
  - name: bench
    address: 127.0.0.1:$port
    direction: inbound
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$bp] }
EOF
}
my $wm_obs = start_traced($oport, $oadmin, "{ zipkin: { address: 127.0.0.1:$cport, sampling: 100.0 } }");
my ($otport, $otadmin) = (free_port(), free_port());
my $wm_otlp = start_traced($otport, $otadmin,
	qq{{ opentelemetry: { http_service: { http_uri: { uri: "http://127.0.0.1:$cport/v1/traces" } }, sampling: 100.0 } }});

my $nport = free_port();
my $nproxy = start_nginx(<<"EOF", port => $nport);
upstream backend {
	server 127.0.0.1:$bp;
	keepalive 64;
}
server {
	listen 127.0.0.1:$nport;
	access_log off;
	location / {
		proxy_pass http://backend;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
	}
}
EOF

# nginx with an h2c (prior knowledge) listener for the h2load rows; no request
# cap per connection so h2load is not cut off mid-run.
my $n2port = free_port();
my $nproxy2 = start_nginx(<<"EOF", port => $n2port);
upstream backend2 {
	server 127.0.0.1:$bp;
	keepalive 64;
}
server {
	listen 127.0.0.1:$n2port http2;
	access_log off;
	http2_max_requests 100000000;
	keepalive_requests 100000000;
	location / {
		proxy_pass http://backend2;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
	}
}
EOF

my ($hport, $htls, $hmtls) = map { free_port() } 1 .. 3;
my $hcfg = tmpdir() . '/haproxy.cfg';
spew($hcfg, <<"EOF");
global
	nbthread 1
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	http-reuse always
frontend bench
	bind 127.0.0.1:$hport
	default_backend backend
frontend bench-tls
	bind 127.0.0.1:$htls ssl crt $c/was-full.pem
	default_backend backend
frontend bench-mtls
	bind 127.0.0.1:$hmtls ssl crt $c/was-full.pem ca-file $c/root.pem verify required
	default_backend backend
backend backend
	server b1 127.0.0.1:$bp
EOF
my $hpid = Wingman::spawn(cmd => [have_prog('haproxy'), '-db', '-f', $hcfg],
	stdout => tmpdir() . '/haproxy.log', stderr => tmpdir() . '/haproxy.log', name => 'haproxy');
wait_for(sub { port_open($hport) }, 10) or die "bench: haproxy did not start:\n" . slurp(tmpdir() . '/haproxy.log');

for my $p ($wport, $oport, $otport, $nport, $hport) {
	my $r = http_get($p, '/');
	die "bench: port $p answered $r->{status} '$r->{body}'\n" unless $r->{status} == 200 && $r->{body} eq $body;
}
my @mtls = ('--cacert', "$c/root.pem", '--cert', "$c/web.pem", '--key', "$c/web-key.pem");
for my $p ($wtls, $htls, $wmtls, $hmtls) {
	my ($out) = curl(@mtls, "https://localhost:$p/");
	die "bench: TLS port $p answered '$out'\n" unless $out eq $body;
}

# h2load -c 32 -m 16 against an h2c listener; $cpu_pid's CPU is charged to the requests.
sub h2drive {
	my ($name, $url, $cpu_pid) = @_;
	my $cpu0 = cpu_s($cpu_pid);
	my $out = `h2load -c 32 -m 16 -D $duration $url 2>&1`;
	my ($rps) = $out =~ /finished in [\d.]+s, ([\d.]+) req\/s/;
	my ($ok, $failed) = $out =~ /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/;
	die "bench: h2load against $name failed:\n$out\n" unless $rps && $ok;
	my $cpu = (cpu_s($cpu_pid) - $cpu0) * 1e6 / $ok;
	printf STDERR "%-20s %10.0f rps  failed %d  CPU %.1f us/request\n", $name, $rps, $failed, $cpu;
	return { rps => $rps, failed => $failed, cpu_us_per_req => $cpu };
}

# Full mTLS handshakes per second: openssl s_time -new for $secs seconds.
sub handshakes {
	my ($name, $port, $secs) = @_;
	my $out = `openssl s_time -connect 127.0.0.1:$port -new -time $secs -cert $c/web.pem -key $c/web-key.pem -CAfile $c/root.pem 2>&1`;
	my ($n, $t) = $out =~ /(\d+) connections in ([\d.]+) real seconds/;
	die "bench: s_time against $name failed:\n$out\n" unless $n && $t;
	printf STDERR "%-20s %10.0f handshakes/s\n", $name, $n / $t;
	return $n / $t;
}

sleep 0.5;
my $idle_kb = rss_kb($wm->pid);
my $idle_anon_kb = rss_kb($wm->pid, 'RssAnon');
my $idle_obs_kb = rss_kb($wm_obs->pid);
my ($loadavg) = slurp('/proc/loadavg') =~ /^(\S+ \S+ \S+)/;
$loadavg //= '?';

print STDERR "bench: wrk -t2 -c$conns -d${duration}s, keep-alive, ${\ length $body}-byte body\n";
my $npid = child_pid($nproxy->pid) // $nproxy->pid;
my %wrk = (conns => $conns, duration => $duration);
my (%runs, %hs, %h2);
for my $round (1 .. $rounds) {
	print STDERR "round $round/$rounds\n";
	push @{ $runs{direct} }, drive('nginx backend direct', "http://127.0.0.1:$bp/", %wrk);
	push @{ $runs{wingman} }, drive('wingman', "http://127.0.0.1:$wport/", %wrk, rss_pid => $wm->pid, cpu_pid => $wm->pid);
	push @{ $runs{obs} }, drive('wingman+zipkin+metrics', "http://127.0.0.1:$oport/", %wrk, cpu_pid => $wm_obs->pid);
	push @{ $runs{wingman2} }, drive('wingman (again)', "http://127.0.0.1:$wport/", %wrk, cpu_pid => $wm->pid);
	push @{ $runs{otlp} }, drive('wingman+otlp+metrics', "http://127.0.0.1:$otport/", %wrk, cpu_pid => $wm_otlp->pid);
	die "bench: wingman (tracing) exited during the run\n" . $wm_obs->stderr . $wm_otlp->stderr
		unless $wm_obs->alive && $wm_otlp->alive;
	next if $only;
	push @{ $runs{policy} }, drive('wingman+retries+outlier', "http://127.0.0.1:$wpol/", %wrk, cpu_pid => $wm->pid);
	push @{ $runs{nginx} }, drive('nginx proxy', "http://127.0.0.1:$nport/", %wrk, cpu_pid => $npid);
	push @{ $runs{haproxy} }, drive('haproxy', "http://127.0.0.1:$hport/", %wrk, cpu_pid => $hpid);
	push @{ $runs{wingman_tls} }, drive('wingman TLS', "https://127.0.0.1:$wtls/", %wrk, rss_pid => $wm->pid, cpu_pid => $wm->pid);
	push @{ $runs{haproxy_tls} }, drive('haproxy TLS', "https://127.0.0.1:$htls/", %wrk, cpu_pid => $hpid);
	push @{ $hs{wingman} }, handshakes('wingman mTLS', $wmtls, 3);
	push @{ $hs{haproxy} }, handshakes('haproxy mTLS', $hmtls, 3);
	push @{ $h2{wingman} }, h2drive('wingman h2c', "http://127.0.0.1:$wh2/", $wm->pid);
	push @{ $h2{nginx} }, h2drive('nginx h2c', "http://127.0.0.1:$n2port/", child_pid($nproxy2->pid) // $nproxy2->pid);
	die "bench: wingman exited during the run\n" . $wm->stderr unless $wm->alive;
}

# The median over rounds of $x's CPU per request divided by $y's in the same
# round: noisy neighbours and the machine's drift cancel out better than in a
# ratio of medians.
sub paired_cpu_ratio {
	my ($x, $y) = @_;
	return median(map { $runs{$x}[$_]{cpu_us_per_req} / $runs{$y}[$_]{cpu_us_per_req} } 0 .. $#{ $runs{$y} });
}

# Tracing's cost: each traced wingman against the plain one run right before
# it (Zipkin after the first plain run, OTLP after the second), and what its
# reporter did.
sub tracing_rows {
	for (['Zipkin', 'obs', 'wingman', $wm_obs, 'zipkin', [qw(spans_sent spans_dropped reports_sent reports_failed)]],
	     ['OpenTelemetry (OTLP)', 'otlp', 'wingman2', $wm_otlp, 'opentelemetry',
	      [qw(spans_sent spans_dropped http_reports_sent http_reports_failed)]]) {
		my ($what, $t, $base, $w, $prefix, $stats) = @$_;
		printf "| CPU per request ratio %s 100%% + metrics / plain wingman (target <= 1.10; median of per-round ratios) | %.2f |\n",
			$what, paired_cpu_ratio($t, $base);
		printf "| requests/s ratio %s 100%% + metrics / plain wingman (median of per-round ratios) | %.2f |\n",
			$what, paired_ratio($t, $base);
		my $st = $w->stats('tracing');
		printf "| %s: %s | %s |\n", $what, join(' / ', @$stats), join(' / ', map { $st->{"tracing.$prefix.$_"} // 0 } @$stats);
	}
}
if ($only) {
	my %med = map { my $t = $_; ($t => median(map { $_->{cpu_us_per_req} } @{ $runs{$t} })) } qw(wingman obs otlp);
	printf "\nwrk -t2 -c%d -d%ds (keep-alive) x %d rounds, tracing only; load average before: %s\n\n", $conns,
		$duration, $rounds, $loadavg;
	print "| metric | value |\n|---|---:|\n";
	printf "| CPU µs/request (medians): plain / Zipkin + metrics / OTLP + metrics | %.1f / %.1f / %.1f |\n",
		@med{qw(wingman obs otlp)};
	tracing_rows();
	exit 0;
}

# Memory after HTTP/2 bursts: 1,000 connections opened and closed at once,
# three times; RSS just after each burst (what stayed for good before
# wingman trimmed its malloc arenas once idle) and 5 s later. One stream per
# connection keeps the 1,000 requests in flight under the default circuit
# breaker (max_requests 1024).
sub bursts {
	my ($name, $url, $pid) = @_;
	my @r = (rss_kb($pid) // 0);
	for (1 .. 3) {
		my $out = `h2load -n 4000 -c 1000 -m 1 $url 2>&1`;
		die "bench: h2load burst against $name failed:\n$out\n" unless $out =~ /status codes: 4000 2xx/;
		push @r, rss_kb($pid) // 0;
		sleep 5;
		push @r, rss_kb($pid) // 0;
	}
	printf STDERR "%-20s RSS kB idle %d, bursts (just after / 5 s later) %s\n", $name, $r[0],
		join(', ', map { "$r[2 * $_ + 1] / $r[2 * $_ + 2]" } 0 .. 2);
	return \@r;
}
my %burst = (wingman => bursts('wingman h2c', "http://127.0.0.1:$wh2/", $wm->pid),
	nginx => bursts('nginx h2c', "http://127.0.0.1:$n2port/", child_pid($nproxy2->pid) // $nproxy2->pid));

# The median round by rps stands for each target; RSS peak is the highest seen.
my %res;
for my $t (keys %runs) {
	my @by = sort { $a->{rps} <=> $b->{rps} } @{ $runs{$t} };
	$res{$t} = { %{ $by[$#by / 2] } };
	$res{$t}{peak_rss_kb} = (sort { $b <=> $a } map { $_->{peak_rss_kb} } @by)[0];
	my @cpu = sort { $a <=> $b } grep { defined } map { $_->{cpu_us_per_req} } @by;
	$res{$t}{cpu_us_per_req} = @cpu ? $cpu[$#cpu / 2] : undef;
}

sub fmt_ms { defined $_[0] ? sprintf('%.3f', $_[0]) : '?' }

# The median over rounds of $x's rps divided by $y's in the same round: the two
# run back to back, so the machine's drift between rounds cancels out.
sub paired_ratio {
	my ($x, $y) = @_;
	my @r = sort { $a <=> $b } map { $runs{$x}[$_]{rps} / $runs{$y}[$_]{rps} } 0 .. $#{ $runs{$y} };
	return $r[$#r / 2];
}

my @cpu = grep { /^model name/ } split /\n/, slurp('/proc/cpuinfo');
my ($model) = ($cpu[0] // '') =~ /:\s*(.*)/;
print "\n";
printf "wrk -t2 -c%d -d%ds (keep-alive) x %d rounds (median shown), %d-byte body, one machine with %d CPUs%s, load average before: %s\n\n",
	$conns, $duration, $rounds, length $body, scalar(@cpu), $model ? " ($model)" : '', $loadavg;
print "| target | requests/s | p50 latency (ms) | p99 latency (ms) | CPU µs/request |\n";
print "|---|---:|---:|---:|---:|\n";
for (['nginx backend (direct, reference)', 'direct'], ['wingman (1 worker)', 'wingman'],
	['wingman, Zipkin 100% sampling + Istio metrics', 'obs'],
	['wingman, OpenTelemetry (OTLP/HTTP) 100% sampling + Istio metrics', 'otlp'],
	['wingman, route timeout + retries + outlier detection (not firing)', 'policy'],
	['nginx proxy (1 worker, keepalive 64)', 'nginx'], ['HAProxy (nbthread 1, http-reuse always)', 'haproxy'],
	['wingman, TLS (SIMPLE, keep-alive)', 'wingman_tls'], ['HAProxy, TLS (same certificate)', 'haproxy_tls']) {
	my $r = $res{ $_->[1] };
	printf "| %s | %.0f | %s | %s | %s |\n", $_->[0], $r->{rps}, fmt_ms($r->{p50_ms}), fmt_ms($r->{p99_ms}),
		defined $r->{cpu_us_per_req} ? sprintf('%.1f', $r->{cpu_us_per_req}) : '-';
}
print "\n";
print "| metric | value |\n|---|---:|\n";
printf "| wingman RSS idle (before traffic; TLS listeners loaded) | %.1f MB |\n", ($idle_kb // 0) / 1024;
printf "| of which private (RssAnon; the rest is shared library pages, mostly libcrypto) | %.1f MB |\n",
	($idle_anon_kb // 0) / 1024;
printf "| wingman RSS idle, no TLS (the tracing instance, before traffic) | %.1f MB |\n", ($idle_obs_kb // 0) / 1024;
printf "| wingman RSS under load (peak sampled) | %.1f MB |\n", $res{wingman}{peak_rss_kb} / 1024;
printf "| requests/s ratio wingman/nginx | %.2f |\n", $res{wingman}{rps} / $res{nginx}{rps};
tracing_rows();
printf "| requests/s ratio retries+outlier/plain route (target >= 0.97; median of per-round ratios) | %.2f |\n",
	paired_ratio('policy', 'wingman');
printf "| CPU per request ratio retries+outlier/plain route | %.2f |\n",
	$res{policy}{cpu_us_per_req} / $res{wingman}{cpu_us_per_req};
printf "| requests/s ratio wingman/HAProxy | %.2f |\n", $res{wingman}{rps} / $res{haproxy}{rps};
printf "| CPU per request ratio wingman/nginx (lower is better) | %.2f |\n",
	$res{wingman}{cpu_us_per_req} / $res{nginx}{cpu_us_per_req};
printf "| CPU per request ratio wingman/HAProxy (lower is better) | %.2f |\n",
	$res{wingman}{cpu_us_per_req} / $res{haproxy}{cpu_us_per_req};
printf "| p99 ratio wingman/nginx (lower is better) | %.2f |\n",
	($res{wingman}{p99_ms} // 0) / ($res{nginx}{p99_ms} || 1);
printf "| p99 ratio wingman/HAProxy (lower is better) | %.2f |\n",
	($res{wingman}{p99_ms} // 0) / ($res{haproxy}{p99_ms} || 1);
printf "| TLS requests/s ratio wingman/HAProxy | %.2f |\n", $res{wingman_tls}{rps} / $res{haproxy_tls}{rps};
my %h2m = map { my @v = sort { $a->{rps} <=> $b->{rps} } @{ $h2{$_} }; ($_ => $v[$#v / 2]) } keys %h2;
printf "| HTTP/2 (h2load -c 32 -m 16, h2c) requests/s, wingman / nginx | %.0f / %.0f |\n",
	$h2m{wingman}{rps}, $h2m{nginx}{rps};
printf "| HTTP/2 requests/s ratio wingman/nginx (target >= 1.0) | %.2f |\n", $h2m{wingman}{rps} / $h2m{nginx}{rps};
printf "| HTTP/2 CPU per request, wingman / nginx | %.1f / %.1f µs |\n",
	$h2m{wingman}{cpu_us_per_req}, $h2m{nginx}{cpu_us_per_req};
printf "| HTTP/2 failed requests, wingman / nginx | %d / %d |\n", $h2m{wingman}{failed}, $h2m{nginx}{failed};
for my $n (qw(wingman nginx)) {
	my $r = $burst{$n};
	printf "| %s RSS around 3 HTTP/2 bursts (1,000 connections, 4,000 requests): before; just after / 5 s later each | %.1f; %s MB |\n",
		$n eq 'wingman' ? 'wingman' : 'nginx worker', $r->[0] / 1024,
		join('; ', map { sprintf('%.1f / %.1f', $r->[2 * $_ + 1] / 1024, $r->[2 * $_ + 2] / 1024) } 0 .. 2);
}
my %hsm = map { my @v = sort { $a <=> $b } @{ $hs{$_} }; ($_ => $v[$#v / 2]) } keys %hs;
printf "| mTLS full handshakes/s, wingman (STRICT) | %.0f |\n", $hsm{wingman};
printf "| mTLS full handshakes/s, HAProxy (verify required) | %.0f |\n", $hsm{haproxy};
printf "| mTLS handshakes/s ratio wingman/HAProxy | %.2f |\n", $hsm{wingman} / $hsm{haproxy};
print "\n";
for my $n (qw(wingman obs otlp policy nginx haproxy wingman_tls haproxy_tls)) {
	my $r = $res{$n};
	my $err = $r->{non2xx} + $r->{connect} + $r->{read} + $r->{write} + $r->{timeout};
	print "warning: $n had $err errors or non-2xx responses\n" if $err;
}
