#!/usr/bin/perl
# `make bench`: one nginx backend (1 worker, small fixed body), and in front of
# it, in the same run, wingman (1 worker, no access log), nginx as a reverse
# proxy (1 worker, upstream keepalive 64) and HAProxy (nbthread 1, http-reuse
# always). wrk -t2 -c64 (keep-alive) drives each, and the backend directly as a
# reference. Prints a Markdown table with rps, p50/p99 latency, wingman's RSS
# idle and under load, and the ratios wingman/nginx and wingman/HAProxy.
#
# Environment: BENCH_DURATION (seconds, default 10), BENCH_CONNECTIONS (64).
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use Wingman;

my $duration = $ENV{BENCH_DURATION} // 10;
my $conns = $ENV{BENCH_CONNECTIONS} // 64;

for my $p (qw(wrk haproxy)) {
	die "bench: $p not found (./bootstrap deps installs it)\n" unless have_prog($p);
}

sub rss_kb {
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	while (<$fh>) {
		return $1 if /^VmRSS:\s+(\d+) kB/;
	}
	return undef;
}

# Runs wrk against $url; while it runs, samples the RSS of $pid (if given).
sub drive {
	my ($name, $url, $pid) = @_;
	my $out = tmpdir() . "/wrk-$name.out";
	unlink $out;
	my $w = Wingman::spawn(cmd => ['wrk', '-t2', "-c$conns", "-d${duration}s", '--latency', $url],
		stdout => $out, stderr => $out, name => "wrk-$name");
	my $peak = 0;
	while (waitpid($w, POSIX::WNOHANG()) != $w) {
		if ($pid) {
			my $r = rss_kb($pid) // 0;
			$peak = $r if $r > $peak;
		}
		sleep 0.1;
	}
	Wingman::stop_process($w);
	my $res = Wingman::wrk_parse(slurp($out));
	die "bench: wrk against $name failed:\n$res->{raw}\n" unless $res->{rps};
	$res->{peak_rss_kb} = $peak;
	printf STDERR "%-20s %10.0f rps  p50 %7.3f ms  p99 %7.3f ms  errors %d/%d\n", $name, $res->{rps},
		$res->{p50_ms} // -1, $res->{p99_ms} // -1, $res->{non2xx},
		$res->{connect} + $res->{read} + $res->{write} + $res->{timeout};
	return $res;
}

my $body = 'hello from the backend';
my $backend = start_nginx(qq{
	access_log off;
	location / { return 200 "$body"; }
});
my $bp = $backend->port;

my $wport = free_port();
my $wadmin = free_port();
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$wadmin }
access_log: { path: off }
listeners:
  - name: bench
    address: 127.0.0.1:$wport
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: backend } }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$bp] }
EOF

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

my $hport = free_port();
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
backend backend
	server b1 127.0.0.1:$bp
EOF
my $hpid = Wingman::spawn(cmd => [have_prog('haproxy'), '-db', '-f', $hcfg],
	stdout => tmpdir() . '/haproxy.log', stderr => tmpdir() . '/haproxy.log', name => 'haproxy');
wait_for(sub { port_open($hport) }, 10) or die "bench: haproxy did not start:\n" . slurp(tmpdir() . '/haproxy.log');

for my $p ($wport, $nport, $hport) {
	my $r = http_get($p, '/');
	die "bench: port $p answered $r->{status} '$r->{body}'\n" unless $r->{status} == 200 && $r->{body} eq $body;
}

sleep 0.5;
my $idle_kb = rss_kb($wm->pid);
my ($loadavg) = slurp('/proc/loadavg') =~ /^(\S+ \S+ \S+)/;
$loadavg //= '?';

print STDERR "bench: wrk -t2 -c$conns -d${duration}s, keep-alive, ${\ length $body}-byte body\n";
my %res;
$res{direct} = drive('nginx backend direct', "http://127.0.0.1:$bp/");
$res{wingman} = drive('wingman', "http://127.0.0.1:$wport/", $wm->pid);
$res{nginx} = drive('nginx proxy', "http://127.0.0.1:$nport/");
$res{haproxy} = drive('haproxy', "http://127.0.0.1:$hport/");
die "bench: wingman exited during the run\n" . $wm->stderr unless $wm->alive;

sub fmt_ms { defined $_[0] ? sprintf('%.3f', $_[0]) : '?' }

my @cpu = grep { /^model name/ } split /\n/, slurp('/proc/cpuinfo');
my ($model) = ($cpu[0] // '') =~ /:\s*(.*)/;
print "\n";
printf "wrk -t2 -c%d -d%ds (keep-alive), %d-byte body, one machine with %d CPUs%s, load average before: %s\n\n",
	$conns, $duration, length $body, scalar(@cpu), $model ? " ($model)" : '', $loadavg;
print "| target | requests/s | p50 latency (ms) | p99 latency (ms) |\n";
print "|---|---:|---:|---:|\n";
for (['nginx backend (direct, reference)', 'direct'], ['wingman (1 worker)', 'wingman'],
	['nginx proxy (1 worker, keepalive 64)', 'nginx'], ['HAProxy (nbthread 1, http-reuse always)', 'haproxy']) {
	my $r = $res{ $_->[1] };
	printf "| %s | %.0f | %s | %s |\n", $_->[0], $r->{rps}, fmt_ms($r->{p50_ms}), fmt_ms($r->{p99_ms});
}
print "\n";
print "| metric | value |\n|---|---:|\n";
printf "| wingman RSS idle (before traffic) | %.1f MB |\n", ($idle_kb // 0) / 1024;
printf "| wingman RSS under load (peak sampled) | %.1f MB |\n", $res{wingman}{peak_rss_kb} / 1024;
printf "| requests/s ratio wingman/nginx | %.2f |\n", $res{wingman}{rps} / $res{nginx}{rps};
printf "| requests/s ratio wingman/HAProxy | %.2f |\n", $res{wingman}{rps} / $res{haproxy}{rps};
printf "| p99 ratio wingman/nginx (lower is better) | %.2f |\n",
	($res{wingman}{p99_ms} // 0) / ($res{nginx}{p99_ms} || 1);
printf "| p99 ratio wingman/HAProxy (lower is better) | %.2f |\n",
	($res{wingman}{p99_ms} // 0) / ($res{haproxy}{p99_ms} || 1);
print "\n";
for my $n (qw(wingman nginx haproxy)) {
	my $r = $res{$n};
	my $err = $r->{non2xx} + $r->{connect} + $r->{read} + $r->{write} + $r->{timeout};
	print "warning: $n had $err errors or non-2xx responses\n" if $err;
}
