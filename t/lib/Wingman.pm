# Helpers for wingman's integration tests: free ports, real processes (wingman,
# nginx, small Perl backends that misbehave on purpose), raw HTTP clients, curl,
# admin queries. Core Perl only. Every process a test starts is killed and
# reaped when its object goes away or the test exits, even when it dies.
package Wingman;

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::MD5 qw(md5_hex);
use Fcntl ();
use JSON::PP ();
use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h _exit setsid);
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
	free_port start_wingman web_conf start_web start_nginx start_nginx_servers start_nginx_big_file
	start_backend start_recorder start_h2_backend start_tcp_echo start_otlp_collector traced_requests
	h2_frame h2_headers_block h2_client_preface h2_frames
	http_get http_raw http_request parse_responses curl admin_get
	wait_for port_open prom_series prom_parse tmpdir slurp spew wingman_bin md5_hex md5_file
	scale have_prog make_response connect_port send_bytes read_response
	wrk_run test_certs
	http_parallel http_loop wingman_check
	config_dump dump_of dump_resources prom_parse prom_find
	have_grpc_node start_grpc_server grpc_call wingman_run start_load
);

my $MAIN_PID = $$;
my %CHILDREN;		# pid => [pgid or 0, name]
my %USED_PORTS;
my $LAST_WINGMAN;
my $TMPDIR;
$Wingman::_n = 0;
$Wingman::_nginx_n = 0;
$Wingman::_prom_n = 0;

# Timeouts grow under sanitizers (WINGMAN_SANITIZERS=1) or WINGMAN_SLOW=N.
sub scale {
	my ($t) = @_;
	my $k = $ENV{WINGMAN_SLOW} || ($ENV{WINGMAN_SANITIZERS} ? 3 : 1);
	return $t * $k;
}

sub tmpdir {
	$TMPDIR //= tempdir('wingman-t-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{WINGMAN_KEEP});
	return $TMPDIR;
}

sub wingman_bin {
	return $ENV{WINGMAN} if $ENV{WINGMAN};
	for my $p ('./proxy/wingman', '../proxy/wingman') {
		return abs_path($p) if -x $p;
	}
	return 'wingman';
}

sub have_prog {
	my ($name) = @_;
	for my $d (split /:/, ($ENV{PATH} // '') . ':/usr/sbin:/sbin') {
		return "$d/$name" if -x "$d/$name";
	}
	return undef;
}

sub slurp {
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return '';
	local $/;
	my $s = <$fh>;
	return $s // '';
}

sub spew {
	my ($path, $data) = @_;
	open(my $fh, '>:raw', $path) or die "write $path: $!";
	print $fh $data;
	close($fh) or die "close $path: $!";
	return $path;
}

sub md5_file {
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "open $path: $!";
	my $ctx = Digest::MD5->new;
	$ctx->addfile($fh);
	return $ctx->hexdigest;
}

# Polls $cb every $step seconds until it returns true or $timeout passes.
# Returns the callback's last value.
sub wait_for {
	my ($cb, $timeout, $step) = @_;
	$timeout //= 5;
	$step //= 0.05;
	my $end = time + $timeout;
	while (1) {
		my $v = $cb->();
		return $v if $v;
		return $v if time >= $end;
		sleep $step;
	}
}

# The series of one family in Prometheus text: ({ labels => {name => value}, value => v }, ...).
sub prom_series {
	my ($text, $name) = @_;
	my @s;
	for (split /\n/, $text) {
		next unless /^\Q$name\E\{(.*)\} (\S+)$/;
		my ($l, $v) = ($1, $2);
		my %l;
		$l{$1} = $2 while $l =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		push @s, { labels => \%l, value => $v };
	}
	return @s;
}

# Parses Prometheus text with the real client library
# (python3-prometheus-client): returns (undef or its error output, the samples
# as { "name{k="v",...}" (labels sorted) => value }, the family types, the
# series seen more than once).
sub prom_parse {
	my ($text) = @_;
	my $py = <<'PY';
import re, sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
# The client renames a counter's samples to <family>_total (OpenMetrics);
# the text's own names come back from its # TYPE lines, which the families follow.
declared = re.findall(r"^# TYPE (\S+) ", text, re.M)
seen = set()
for fam, name in zip(text_string_to_metric_families(text), declared):
    print("T\t%s\t%s" % (name, fam.type))
    for s in fam.samples:
        sname = s.name
        if fam.type == "counter" and sname == fam.name + "_total":
            sname = name
        key = sname + "{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}"
        if key in seen:
            print("D\t" + key)
        seen.add(key)
        print("S\t%s\t%r" % (key, s.value))
PY
	my $dir = tmpdir();
	my $n = ++$Wingman::_prom_n;
	spew("$dir/prom-$n.txt", $text);
	spew("$dir/prom-parse.py", $py);
	my $out = `/usr/bin/python3 $dir/prom-parse.py < $dir/prom-$n.txt 2>&1`;
	my (%samples, %types, @dups);
	for (split /\n/, $out) {
		my ($k, @f) = split /\t/;
		if ($k eq 'S') { $samples{ $f[0] } = $f[1] + 0 }
		elsif ($k eq 'T') { $types{ $f[0] } = $f[1] }
		elsif ($k eq 'D') { push @dups, $f[0] }
	}
	return ($? == 0 ? undef : $out, \%samples, \%types, \@dups);
}

sub port_open {
	my ($port, $host) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => $host // '127.0.0.1', PeerPort => $port,
		Proto => 'tcp', Timeout => 1);
	return 0 unless $s;
	close($s);
	return 1;
}

# A port below the kernel's ephemeral range (so client sockets never take it),
# bindable now and not handed out before by this process.
sub free_port {
	for (1 .. 500) {
		my $p = 20000 + int(rand(12000));
		next if $USED_PORTS{$p};
		my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
			Proto => 'tcp', Listen => 1, ReuseAddr => 1) or next;
		close($s);
		$USED_PORTS{$p} = 1;
		return $p;
	}
	die "no free port found";
}

sub _register {
	my ($pid, $pgid, $name) = @_;
	$CHILDREN{$pid} = [$pgid, $name];
}

# Sends TERM (then KILL after $grace seconds) and reaps. Returns the wait status.
sub _kill_reap {
	my ($pid, $grace, $sig) = @_;
	my $ent = delete $CHILDREN{$pid} or return undef;
	my $pgid = $ent->[0];
	$grace //= 3;
	kill($sig // 'TERM', $pgid ? -$pgid : $pid);
	my $end = time + $grace;
	while (time < $end) {
		my $r = waitpid($pid, WNOHANG);
		if ($r == $pid || $r == -1) {
			kill('KILL', -$pgid) if $pgid;
			return $r == $pid ? $? : undef;
		}
		sleep 0.02;
	}
	kill('KILL', $pgid ? -$pgid : $pid);
	waitpid($pid, 0);
	return $?;
}

# Starts a command in the background (cmd => [...], stdout/stderr => file,
# env => {...}, group => 1 for its own process group); it is killed at exit.
sub spawn { _spawn(@_) }

# Signals a spawned process ($sig, default TERM), waits up to $grace seconds,
# then KILLs; returns the wait status.
sub stop_process {
	my ($pid, $sig, $grace) = @_;
	return _kill_reap($pid, $grace, $sig);
}

sub _spawn {
	my (%o) = @_;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		setsid() if $o{group};
		if (defined $o{stdout}) {
			open(STDOUT, '>>', $o{stdout}) or _exit(127);
		}
		if (defined $o{stderr}) {
			open(STDERR, '>>', $o{stderr}) or _exit(127);
		}
		open(STDIN, '<', '/dev/null');
		%ENV = (%ENV, %{ $o{env} // {} });
		{ exec { $o{cmd}[0] } @{ $o{cmd} } }
		print STDERR "exec $o{cmd}[0]: $!\n";
		_exit(127);
	}
	_register($pid, $o{group} ? $pid : 0, $o{name} // $o{cmd}[0]);
	return $pid;
}

my @WINGMEN;		# every wingman started, to scan for sanitizer reports

# The part of a log from the first sanitizer report on, or ''.
sub sanitizer_report {
	my ($text) = @_;
	return '' unless $text =~ /(==\d+==ERROR: \w+Sanitizer|\S+:\d+:\d+: runtime error: |==\d+==WARNING: \w+Sanitizer)/;
	my $from = $-[0];
	return substr($text, $from, 6000);
}

END {
	if ($$ == $MAIN_PID) {
		my $status = $?;
		if (!Test::More->builder->is_passing && $LAST_WINGMAN) {
			my $err = $LAST_WINGMAN->stderr;
			$err = substr($err, -4000) if length($err) > 4000;
			Test::More::diag("wingman stderr (tail):\n$err") if length $err;
		}
		_kill_reap($_, 3) for keys %CHILDREN;
		for my $w (@WINGMEN) {
			my $rep = sanitizer_report(slurp($w->{stderr}));
			next unless length $rep;
			Test::More::diag("sanitizer report from wingman (pid $w->{pid}, $w->{stderr}):\n$rep");
			$status ||= 1;
		}
		$? = $status;
	}
}

# ---------------------------------------------------------------- wingman

# Starts wingman with $yaml written to a file (or no -c with no_config => 1).
# Waits until every "address: host:port" in the YAML accepts (override with
# wait_ports => [...], or wait => 0). Options: args => [...], env => {...},
# name => "conf name", no_config => 1, ports => [...] (for no_config),
# bin => another wingman binary (t/bench-ab.pl).
sub start_wingman {
	my ($yaml, %o) = @_;
	my $dir = tmpdir();
	my $id = $Wingman::_n++;
	my $conf = "$dir/wingman-$id.yaml";
	my @cmd = ($o{bin} // wingman_bin());
	if ($o{no_config}) {
		$yaml = '';
	} else {
		spew($conf, $yaml);
		push @cmd, '-c', $conf;
	}
	push @cmd, @{ $o{args} // [] };
	my $self = bless {
		conf => $conf, dir => $dir, id => $id,
		stdout => "$dir/wingman-$id.stdout", stderr => "$dir/wingman-$id.stderr",
	}, 'Wingman::Process';
	spew($self->{stdout}, '');
	spew($self->{stderr}, '');
	my @addr = _yaml_addresses($yaml);
	$self->{admin_port} = $1 if $yaml =~ /^\s*admin:\s*\{?\s*address:\s*["']?[^\s"',}]*:(\d+)/m;
	$self->{ports} = [grep { !defined $self->{admin_port} || $_ != $self->{admin_port} } @addr];
	$self->{ports} = $o{ports} if $o{ports};
	$self->{admin_port} = $o{admin_port} if $o{admin_port};
	$self->{access_log} = $1 if $yaml =~ /access_log:\s*\{\s*path:\s*["']?([^\s"',}]+)/;
	$self->{pid} = _spawn(cmd => \@cmd, stdout => $self->{stdout}, stderr => $self->{stderr},
		env => $o{env}, name => 'wingman');
	$LAST_WINGMAN = $self;
	push @WINGMEN, { pid => $self->{pid}, stderr => $self->{stderr} };
	my @wait = $o{wait_ports} ? @{ $o{wait_ports} } : (@{ $self->{ports} },
		defined $self->{admin_port} ? $self->{admin_port} : ());
	@wait = () if defined $o{wait} && !$o{wait};
	my $ok = wait_for(sub {
		return -1 unless $self->alive;
		for my $p (@wait) {
			return 0 unless port_open($p);
		}
		return 1;
	}, scale(10));
	if ($ok != 1) {
		my $why = $self->alive ? 'ports not accepting' : 'exited early';
		die "wingman did not start ($why): @cmd\n--- stderr:\n" . $self->stderr . "\n";
	}
	return $self;
}

# The set-up most tests share, as YAML: "workers: N" (workers, default 1), the
# admin on 127.0.0.1:ADMIN, the access log (off; or access_log => FILE, a path
# or a name in tmpdir(), with log_format => FORMAT inside YAML double quotes),
# top => more top-level lines, then a listener (listener => NAME, default
# "web") on 127.0.0.1:PORT. $rest follows its address line: the listener's own
# keys, indented four spaces ("    routes:" ...), then the sections after it
# ("clusters:" ...). port => and admin => are required: a test that reloads
# keeps them.
sub web_conf {
	my ($rest, %o) = @_;
	$o{access_log} = tmpdir() . "/$o{access_log}" if defined $o{access_log} && $o{access_log} !~ m{/};
	my $log = defined $o{access_log} ? "{ path: $o{access_log}"
		. (defined $o{log_format} ? qq{, format: "$o{log_format}"} : '') . ' }' : '{ path: off }';
	return 'workers: ' . ($o{workers} // 1) . "\n"
		. "admin: { address: 127.0.0.1:$o{admin} }\n"
		. "access_log: $log\n"
		. ($o{top} // '')
		. "listeners:\n  - name: " . ($o{listener} // 'web') . "\n    address: 127.0.0.1:$o{port}\n"
		. $rest;
}

# start_wingman(web_conf($rest, ...)) with the listener and the admin on free
# ports unless port/admin name them ($wm->port, $wm->admin_port); options that
# web_conf does not take go to start_wingman.
sub start_web {
	my ($rest, %o) = @_;
	my %c = map { $_ => delete $o{$_} } grep { exists $o{$_} }
		qw(workers admin access_log log_format top listener port);
	$c{port} //= free_port();
	$c{admin} //= free_port();
	return start_wingman(web_conf($rest, %c), %o);
}

sub _yaml_addresses {
	my ($yaml) = @_;
	my @p;
	while ($yaml =~ /\baddress:\s*["']?(?:\[[^\]]*\]|[\w.\-]+):(\d+)/g) {
		push @p, $1;
	}
	return @p;
}

sub admin_get {
	my ($port, $path, %o) = @_;
	if (!defined $path || $port !~ /^\d+$/) {
		($port, $path) = ($LAST_WINGMAN->{admin_port}, $port);
	}
	my $m = $o{method} // 'GET';
	$o{body} //= '' if $m eq 'POST';
	my $r = http_request($port, $m, $path, %o);
	return wantarray ? ($r->{status}, $r->{body}, $r) : $r->{body};
}

# The samples of $S (from prom_parse) named $name whose labels include %want;
# a list of [ { label => value }, value ].
sub prom_find {
	my ($S, $name, %want) = @_;
	my @r;
	for my $k (keys %$S) {
		next unless $k =~ /^\Q$name\E\{(.*)\}$/;
		my $l = $1;
		my %l;
		$l{$1} = $2 while $l =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		next if grep { !defined $l{$_} || $l{$_} ne $want{$_} } keys %want;
		push @r, [\%l, $S->{$k}];
	}
	return @r;
}

# /config_dump (Envoy's admin.v3.ConfigDump) decoded; $query without the
# '?'. In list context also the status and the raw body.
sub config_dump {
	my ($port, $query) = @_;
	my ($code, $body) = admin_get($port, '/config_dump' . (defined $query ? "?$query" : ''));
	my $d = eval { JSON::PP::decode_json($body) };
	return wantarray ? ($d, $code, $body) : $d;
}

# The config of a dump whose @type is envoy.admin.v3.$type ("ClustersConfigDump").
sub dump_of {
	my ($d, $type) = @_;
	for (@{$d->{configs} // []}) {
		return $_ if ($_->{'@type'} // '') eq "type.googleapis.com/envoy.admin.v3.$type";
	}
	return undef;
}

# The resources of a dump by name: { listeners => { name => Listener },
# clusters => { name => Cluster } (static and dynamic), routes => { name =>
# RouteConfiguration }, secrets => { name => Secret } }.
sub dump_resources {
	my ($d) = @_;
	my %r = (listeners => {}, clusters => {}, routes => {}, secrets => {});
	my $l = dump_of($d, 'ListenersConfigDump') // {};
	$r{listeners}{$_->{name}} = $_->{active_state}{listener} for @{$l->{dynamic_listeners} // []};
	my $c = dump_of($d, 'ClustersConfigDump') // {};
	for (@{$c->{static_clusters} // []}, @{$c->{dynamic_active_clusters} // []}) {
		$r{clusters}{$_->{cluster}{name}} = $_->{cluster};
	}
	my $rt = dump_of($d, 'RoutesConfigDump') // {};
	$r{routes}{$_->{route_config}{name}} = $_->{route_config} for @{$rt->{dynamic_route_configs} // []};
	my $s = dump_of($d, 'SecretsConfigDump') // {};
	$r{secrets}{$_->{name}} = $_->{secret} for @{$s->{dynamic_active_secrets} // []};
	return \%r;
}

# ---------------------------------------------------------------- gRPC

sub _node_dir { return ($INC{'Wingman.pm'} =~ s{/lib/[^/]+$}{}r) . '/node' }

# Whether t/node has @grpc/grpc-js (bootstrap runs npm ci there).
sub have_grpc_node { return -d _node_dir() . '/node_modules/@grpc/grpc-js' }

# t/node/grpc-server.js (echo.proto's Echo service, plaintext h2c) on a
# free port; returns the port once it listens.
sub start_grpc_server {
	my $port = free_port();
	my $dir = tmpdir();
	spawn(cmd => ['node', _node_dir() . '/grpc-server.js', $port], stdout => "$dir/grpc-$port.out",
	      stderr => "$dir/grpc-$port.err", name => "grpc-server-$port");
	wait_for(sub { port_open($port) }, scale(15)) or die 'gRPC server did not start: ' . slurp("$dir/grpc-$port.err");
	return $port;
}

# One call of the grpc-js client (t/node/grpc-client.js) to 127.0.0.1:$port:
# $method Unary or Stream, $req the request message, $deadline in ms
# (optional). Returns its {code, details, messages, ms}.
sub grpc_call {
	my ($port, $method, $req, $deadline) = @_;
	my @cmd = ('node', _node_dir() . '/grpc-client.js', "127.0.0.1:$port", $method, JSON::PP::encode_json($req),
		defined $deadline ? $deadline : ());
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if ($pid == 0) {
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or POSIX::_exit(127);
	}
	local $/;
	my $out = <$fh> // '';
	close($fh);
	my ($line) = $out =~ /^(\{.*\})$/m;
	return $line ? JSON::PP::decode_json($line) : { code => -1, details => $out, messages => [] };
}

# ---------------------------------------------------------------- nginx

# Starts nginx with its own prefix. $snippet is either http-level config
# containing "server {" blocks (then pass port => N that they listen on), or
# the body of one server block, which gets "listen 127.0.0.1:<free port>".
# Options: port, http => extra http-level directives, workers (default 1).
sub start_nginx {
	my ($snippet, %o) = @_;
	my $bin = $ENV{NGINX} // (-x '/usr/sbin/nginx' ? '/usr/sbin/nginx' : have_prog('nginx'));
	die "nginx not found" unless $bin && -x $bin;
	my $dir = tmpdir();
	my $id = ++$Wingman::_nginx_n;
	my $pre = "$dir/nginx-$id";
	mkdir $pre;
	mkdir "$pre/html";
	my $port = $o{port} // free_port();
	my $body = $snippet =~ /\bserver\s*\{/ ? $snippet
		: "server {\n\tlisten 127.0.0.1:$port;\n\troot $pre/html;\n$snippet\n}\n";
	my $user = $> == 0 ? 'user root;' : '';
	my $workers = $o{workers} // 1;
	my $http = $o{http} // '';
	spew("$pre/nginx.conf", <<"EOF");
daemon off;
worker_processes $workers;
$user
pid $pre/nginx.pid;
error_log $pre/error.log info;
events { worker_connections 4096; }
http {
	access_log $pre/access.log;
	default_type text/plain;
	client_body_temp_path $pre/tmp-body;
	proxy_temp_path $pre/tmp-proxy;
	fastcgi_temp_path $pre/tmp-fastcgi;
	uwsgi_temp_path $pre/tmp-uwsgi;
	scgi_temp_path $pre/tmp-scgi;
	keepalive_requests 1000000;
	client_max_body_size 0;
$http
$body
}
EOF
	my $self = bless { dir => $pre, port => $port, html => "$pre/html" }, 'Wingman::Nginx';
	$self->{pid} = _spawn(cmd => [$bin, '-p', "$pre/", '-e', "$pre/error.log", '-c', "$pre/nginx.conf"],
		stderr => "$pre/stderr", name => 'nginx');
	my $ok = wait_for(sub {
		return -1 if waitpid($self->{pid}, WNOHANG) == $self->{pid};
		return port_open($port);
	}, scale(10));
	if ($ok != 1) {
		delete $CHILDREN{$self->{pid}};
		die "nginx did not start:\n" . slurp("$pre/stderr") . slurp("$pre/error.log");
	}
	return $self;
}

# One nginx with a server per body on its own free port, each answering
# 200 BODY (nginx variables work: "A \$request_uri") to every request.
# Returns the nginx and the ports in order; it has waited for the first only.
sub start_nginx_servers {
	my (@bodies) = @_;
	my @ports = map { free_port() } @bodies;
	my $http = join '', map { "server { listen 127.0.0.1:$ports[$_]; location / { return 200 \"$bodies[$_]\"; } }\n" }
		0 .. $#bodies;
	return (start_nginx($http, port => $ports[0]), @ports);
}

# nginx answering "small body\n" at /small and serving a file of $bytes random
# bytes at /files/big.bin. Returns the nginx, the file's path and its MD5.
sub start_nginx_big_file {
	my ($bytes) = @_;
	my $ng = start_nginx(q{
	location = /small { return 200 "small body\n"; }
	location /files/ { }
});
	mkdir $ng->html . '/files';
	my $big = $ng->html . '/files/big.bin';
	open(my $in, '<:raw', '/dev/urandom') or die "urandom: $!";
	read($in, my $buf, $bytes) == $bytes or die "short read";
	spew($big, $buf);
	return ($ng, $big, md5_file($big));
}

# ---------------------------------------------------------------- backends

# A small forking HTTP/1.1 server on 127.0.0.1 for what nginx cannot do.
# mode => 'echo' (default): 200 with a body describing the request:
#     "METHOD PATH VERSION\n" then "name: value\n" per header, "\n", then the body;
#     response header x-body-md5 and x-body-length describe the request body.
# mode => 'hang': reads the request and never answers.
# mode => 'reset': reads the request and closes with RST.
# mode => 'close_mid': answers Content-Length: 100000 and closes after 1000 bytes.
# mode => 'slow': waits delay => S seconds (default 2), then 200 "slow\n".
# mode => 'slow_body': headers, then body pieces every delay => S seconds.
# mode => 'close': accepts and closes at once without reading.
# handler => sub { my ($req, $sock) = @_; return raw response bytes or undef }.
# Scripted backends (traffic-policy tests), chosen by any of these options:
# id => 'a': every response carries "x-backend-id: a" (default "b<port>");
# log => 1: only record requests; mode => '503' (any status code: answers it
# with body "<id> <code>\n") or mode => 'delay:S:ACTION' (waits S seconds);
# script => [ACTION, ...]: the Nth request (counted over all connections) does
# the Nth ACTION, later ones do mode's. ACTION is a mode name above, a status
# code, or delay:S:ACTION. Every request is recorded: $b->requests, $b->count,
# $b->conns, $b->ids, $b->attempts, $b->reset (see Wingman::Backend).
sub start_backend {
	my (%o) = @_;
	return _start_scripted(%o) if !$o{_scripted} && ($o{script} || defined $o{id} || $o{log}
		|| ($o{mode} // '') =~ /^(?:\d{3}\b|delay:)/);
	my $port = $o{port} // free_port();
	my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
		Listen => 128, ReuseAddr => 1) or die "backend listen $port: $!";
	my $mode = $o{mode} // 'echo';
	my $handler = $o{handler} // \&{"Wingman::_mode_$mode"};
	die "unknown backend mode $mode" unless defined &{"Wingman::_mode_$mode"} || $o{handler};
	my $log = tmpdir() . "/backend-$port.log";
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		setsid();
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';
		open(STDERR, '>>', $log);
		while (1) {
			my $c = $ls->accept or next;
			my $k = fork;
			if (defined $k && $k == 0) {
				close($ls);
				eval { _serve_conn($c, $handler, \%o) };
				print STDERR "backend: $@" if $@;
				_exit(0);
			}
			close($c);
		}
	}
	close($ls);
	_register($pid, $pid, "backend:$mode");
	return bless { pid => $pid, port => $port, log => $log }, 'Wingman::Backend';
}

# The Node HTTP/2 (h2c) test upstream, t/node/h2-backend.js (its paths are
# listed there), on a free port; max_streams => N announces
# SETTINGS_MAX_CONCURRENT_STREAMS N. Returns the port once it accepts.
# A TCP server on $port that greets with "$greeting\n" (it speaks first, as
# MySQL does), then echoes until the client's FIN, then closes. Returns once it listens.
sub start_tcp_echo {
	my ($port, $greeting) = @_;
	spawn(cmd => ['perl', '-MIO::Socket::INET', '-e', <<'EOP', $port, $greeting], name => "tcp-echo-$greeting");
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], Listen => 64, ReuseAddr => 1) or die $!;
while (my $c = $l->accept) {
	next if fork;
	syswrite($c, "$ARGV[1]\n");
	while (sysread($c, my $d, 65536)) { while (length $d) { my $n = syswrite($c, $d) or exit 0; substr($d, 0, $n) = ''; } }
	exit 0;
}
EOP
	wait_for(sub { port_open($port) }, scale(10)) or die "tcp echo on $port did not start\n";
}

sub start_h2_backend {
	my (%o) = @_;
	my $port = free_port();
	my $dir = tmpdir();
	my $js = ($INC{'Wingman.pm'} =~ s{/lib/[^/]+$}{}r) . '/node/h2-backend.js';
	spawn(cmd => ['node', $js, $port, $o{max_streams} // ()], stdout => "$dir/h2-backend-$port.out",
		stderr => "$dir/h2-backend-$port.err", name => 'node-h2');
	wait_for(sub { port_open($port) }, scale(10)) or die "node h2 backend did not start: "
		. slurp("$dir/h2-backend-$port.err") . "\n";
	return $port;
}

# The OTLP/HTTP test collector, t/node/otlp-collector.js, on a free port,
# answering status => N (default 200). Returns { port, reports }: reports()
# gives the reports received so far, each as the collector printed it (the
# request decoded with the official OpenTelemetry protobuf definitions).
sub start_otlp_collector {
	my (%o) = @_;
	my $port = free_port();
	my $dir = tmpdir();
	my $js = ($INC{'Wingman.pm'} =~ s{/lib/[^/]+$}{}r) . '/node/otlp-collector.js';
	my $out = "$dir/otlp-collector-$port.out";
	spawn(cmd => ['node', $js, $port, $o{status} // ()], stdout => $out,
		stderr => "$dir/otlp-collector-$port.err", name => 'node-otlp');
	wait_for(sub { port_open($port) }, scale(10)) or die "node OTLP collector did not start: "
		. slurp("$dir/otlp-collector-$port.err") . "\n";
	my $reports = sub {
		my $t = slurp($out) // '';
		$t =~ s/[^\n]*\z//;	# a line still being written
		return map { JSON::PP::decode_json($_) } split /\n/, $t;
	};
	return { port => $port, reports => $reports };
}

# The tracing tests' traffic: $n GETs through $port to /items/1..$n?x=1 with
# Host was.blog.svc.cluster.local:8080, User-Agent $ua and
# x-envoy-downstream-service-cluster web.blog, to an application that echoes
# the headers it got as JSON; each must be a 200. Returns those headers.
sub traced_requests {
	my ($port, $n, $ua) = @_;
	my @seen;
	for my $i (1 .. $n) {
		my $r = http_get($port, "/items/$i?x=1", host => 'was.blog.svc.cluster.local:8080',
			headers => ['User-Agent', $ua, 'x-envoy-downstream-service-cluster', 'web.blog']);
		Test::More::is($r->{status}, 200, "request $i through both hops");
		push @seen, $r->{status} == 200 ? JSON::PP::decode_json($r->{body}) : {};
	}
	return @seen;
}

# A raw upstream that records every byte it receives ($rec->bytes) and answers
# "200 ok" once per request line it sees, whatever follows: for proving that
# what wingman refuses never reaches an upstream, even in part.
sub start_recorder {
	my $port = free_port();
	my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
		Listen => 128, ReuseAddr => 1) or die "recorder listen $port: $!";
	my $file = tmpdir() . "/recorder-$port.bytes";
	spew($file, '');
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		setsid();
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';
		while (1) {
			my $c = $ls->accept or next;
			next if fork;
			close($ls);
			binmode($c);
			my $seen = '';
			while (sysread($c, my $chunk, 65536)) {
				open(my $fh, '>>', $file) or _exit(1);
				binmode($fh);
				print $fh $chunk;
				close($fh);
				$seen .= $chunk;
				while ($seen =~ s/^.*?[A-Z]+ \S+ HTTP\/1\.\d\r?\n//s) {
					_write_all($c, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
				}
			}
			_exit(0);
		}
	}
	close($ls);
	_register($pid, $pid, 'recorder');
	return bless { pid => $pid, port => $port, file => $file }, 'Wingman::Recorder';
}

sub Wingman::Recorder::port { $_[0]{port} }
sub Wingman::Recorder::bytes { slurp($_[0]{file}) }

# Raw HTTP/2 for tests that send what no client would: h2_frame(TYPE, FLAGS,
# STREAM, PAYLOAD); h2_headers_block(name => value, ...) as HPACK literals
# (not indexed, no Huffman, short strings); h2_client_preface() with an empty
# SETTINGS; h2_frames($bytes) parses what came back into [type, flags,
# stream, payload] lists.
sub h2_frame {
	my ($type, $flags, $id, $payload) = @_;
	return substr(pack('N', length $payload), 1, 3) . pack('CCN', $type, $flags, $id) . $payload;
}

sub h2_headers_block {
	my (@kv) = @_;
	my $b = '';
	while (my ($k, $v) = splice(@kv, 0, 2)) {
		$b .= "\0" . chr(length $k) . $k . chr(length $v) . $v;
	}
	return $b;
}

sub h2_client_preface { "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . h2_frame(4, 0, 0, '') }

sub h2_frames {
	my ($bytes) = @_;
	my @f;
	while (length($bytes) >= 9) {
		my ($len_hi, $len_lo, $type, $flags, $id) = unpack('CnCCN', $bytes);
		my $len = $len_hi << 16 | $len_lo;
		last if length($bytes) < 9 + $len;
		push @f, [$type, $flags, $id & 0x7fffffff, substr($bytes, 9, $len)];
		substr($bytes, 0, 9 + $len) = '';
	}
	return @f;
}

# Reads one request from $sock: { method, path, version, headers => {lc => v},
# hlist => [[name, value]...], body, keepalive }. Undef on EOF.
sub read_request {
	my ($sock, $bufref) = @_;
	my $buf = $bufref // \(my $b = '');
	while ($$buf !~ /\r?\n\r?\n/) {
		my $n = sysread($sock, $$buf, 65536, length $$buf);
		return undef unless $n;
	}
	$$buf =~ s/^(.*?)\r?\n\r?\n//s;
	my @lines = split /\r?\n/, $1;
	my ($method, $path, $version) = split / /, shift(@lines), 3;
	my (%h, @hl);
	for (@lines) {
		my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
		push @hl, [$k, $v];
		$h{lc $k} = exists $h{lc $k} ? "$h{lc $k}, $v" : $v;
	}
	my $req = { method => $method, path => $path, version => $version // '', headers => \%h,
		hlist => \@hl, body => '' };
	if (($h{expect} // '') =~ /100-continue/i) {
		syswrite($sock, "HTTP/1.1 100 Continue\r\n\r\n");
	}
	if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
		$req->{chunked} = 1;
		while (1) {
			while ($$buf !~ /\r\n/) {
				sysread($sock, $$buf, 65536, length $$buf) or return undef;
			}
			$$buf =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n// or return undef;
			my $len = hex $1;
			if ($len == 0) {
				while ($$buf !~ /^\r\n/ && $$buf !~ /\r\n\r\n/) {
					sysread($sock, $$buf, 65536, length $$buf) or last;
				}
				$$buf =~ s/^(?:.*?\r\n)?\r\n//s;
				last;
			}
			while (length($$buf) < $len + 2) {
				sysread($sock, $$buf, 65536, length $$buf) or return undef;
			}
			$req->{body} .= substr($$buf, 0, $len);
			substr($$buf, 0, $len + 2) = '';
		}
	} elsif (my $cl = $h{'content-length'}) {
		while (length($$buf) < $cl) {
			sysread($sock, $$buf, 1 << 20, length $$buf) or return undef;
		}
		$req->{body} = substr($$buf, 0, $cl);
		substr($$buf, 0, $cl) = '';
	}
	my $conn = lc($h{connection} // '');
	$req->{keepalive} = $req->{version} eq 'HTTP/1.1' ? $conn !~ /close/ : $conn =~ /keep-alive/;
	return $req;
}

sub _serve_conn {
	my ($c, $handler, $o) = @_;
	binmode($c);
	my $buf = '';
	while (1) {
		my $req = read_request($c, \$buf) or return;
		my $resp = $handler->($req, $c, $o);
		return unless defined $resp;
		_write_all($c, $resp);
		return unless $req->{keepalive} && $resp !~ /^[^\r\n]*\r\n(?:[^\r\n]+\r\n)*?connection:\s*close/im;
	}
}

sub _write_all {
	my ($c, $data) = @_;
	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($c, $data, length($data) - $off, $off);
		die "write: $!" unless defined $n;
		$off += $n;
	}
}

sub _response {
	my ($status, $body, @h) = @_;
	my $r = "HTTP/1.1 $status\r\ncontent-length: " . length($body) . "\r\n";
	while (my ($k, $v) = splice(@h, 0, 2)) {
		$r .= "$k: $v\r\n";
	}
	return "$r\r\n$body";
}

# Raw response bytes with a Content-Length: make_response('200 OK', $body, name => value, ...).
sub make_response { _response(@_) }

sub _mode_echo {
	my ($req) = @_;
	my $b = "$req->{method} $req->{path} $req->{version}\n";
	$b .= "$_->[0]: $_->[1]\n" for @{ $req->{hlist} };
	$b .= "\n$req->{body}";
	return _response('200 OK', $b, 'content-type', 'text/plain',
		'x-body-md5', md5_hex($req->{body}), 'x-body-length', length $req->{body},
		'x-body-chunked', $req->{chunked} ? 1 : 0);
}

# Answers "MD5 LENGTH CHUNKED\n" for the request body, without echoing it.
sub _mode_md5 {
	my ($req) = @_;
	return _response('200 OK', sprintf("%s %d %d\n", md5_hex($req->{body}), length $req->{body},
		$req->{chunked} ? 1 : 0), 'content-type', 'text/plain');
}

sub _mode_hang {
	sleep 3600;
	return undef;
}

sub _mode_reset {
	my ($req, $c) = @_;
	setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
	close($c);
	return undef;
}

sub _mode_close {
	return undef;
}

sub _mode_close_mid {
	my ($req, $c) = @_;
	_write_all($c, "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ncontent-type: text/plain\r\n\r\n" . ('x' x 1000));
	sleep 0.2;
	close($c);
	return undef;
}

sub _mode_slow {
	my ($req, $c, $o) = @_;
	sleep($o->{delay} // 2);
	return _response('200 OK', "slow\n", 'content-type', 'text/plain');
}

sub _mode_slow_body {
	my ($req, $c, $o) = @_;
	my $pieces = $o->{pieces} // 5;
	_write_all($c, "HTTP/1.1 200 OK\r\ncontent-length: " . (6 * $pieces) . "\r\n\r\n");
	for my $i (1 .. $pieces) {
		sleep($o->{delay} // 0.5);
		_write_all($c, sprintf("part%d\n", $i % 10));
	}
	return '';
}

# Status codes a scripted backend may answer, with reason phrases.
my %REASON = (200 => 'OK', 201 => 'Created', 204 => 'No Content', 301 => 'Moved Permanently',
	400 => 'Bad Request', 404 => 'Not Found', 408 => 'Request Timeout', 409 => 'Conflict',
	429 => 'Too Many Requests', 500 => 'Internal Server Error', 501 => 'Not Implemented',
	502 => 'Bad Gateway', 503 => 'Service Unavailable', 504 => 'Gateway Timeout');

sub _start_scripted {
	my (%o) = @_;
	$o{port} //= free_port();
	$o{id} //= "b$o{port}";
	my $base = tmpdir() . "/backend-$o{port}";
	$o{_reqlog} = "$base.requests";
	$o{_seq} = "$base.seq";
	spew($o{_reqlog}, '');
	spew($o{_seq}, '0');
	for my $a (@{ $o{script} // [] }, $o{mode} // 'echo') {
		die "unknown backend action $a" unless _action_ok($a);
	}
	my $b = start_backend(%o, _scripted => 1, handler => \&_scripted_handler);
	@$b{qw(id reqlog seq)} = @o{qw(id _reqlog _seq)};
	return $b;
}

sub _action_ok {
	my ($a) = @_;
	return _action_ok($1) if $a =~ /^delay:[\d.]+:(.+)$/;
	return $a =~ /^\d{3}$/ || defined &{"Wingman::_mode_$a"};
}

# The next request number of a scripted backend (1-based), over all its
# connection processes.
sub _seq_next {
	my ($path) = @_;
	sysopen(my $fh, $path, Fcntl::O_RDWR() | Fcntl::O_CREAT()) or die "open $path: $!";
	flock($fh, Fcntl::LOCK_EX()) or die "flock $path: $!";
	sysread($fh, my $v, 64);
	my $n = ($v || 0) + 1;
	sysseek($fh, 0, 0);
	truncate($fh, 0);
	syswrite($fh, $n);
	close($fh);
	return $n;
}

sub _scripted_handler {
	my ($req, $c, $o) = @_;
	my $n = _seq_next($o->{_seq});
	my %h = %{ $req->{headers} };
	my $line = JSON::PP->new->canonical->encode({
		n => $n, conn => $$, t => time, method => $req->{method}, path => $req->{path},
		headers => \%h, body_length => length $req->{body}, body_md5 => md5_hex($req->{body}),
		chunked => $req->{chunked} ? 1 : 0,
	});
	open(my $fh, '>>', $o->{_reqlog}) or die "open $o->{_reqlog}: $!";
	syswrite($fh, "$line\n");
	close($fh);
	my $script = $o->{script} // [];
	my $act = $n <= @$script ? $script->[$n - 1] : ($o->{mode} // 'echo');
	return _scripted_act($act, $req, $c, $o);
}

sub _scripted_act {
	my ($act, $req, $c, $o) = @_;
	if ($act =~ /^delay:([\d.]+):(.+)$/) {
		sleep $1;
		return _scripted_act($2, $req, $c, $o);
	}
	my $resp;
	if ($act =~ /^(\d{3})$/) {
		$resp = _response("$1 " . ($REASON{$1} // 'Status'), "$o->{id} $1\n", 'content-type', 'text/plain');
	} else {
		my $mode = \&{"Wingman::_mode_$act"};
		$resp = $mode->($req, $c, $o);
	}
	$resp =~ s/\r\n/\r\nx-backend-id: $o->{id}\r\n/ if defined $resp && length $resp;
	return $resp;
}

# ---------------------------------------------------------------- clients

# Connects to 127.0.0.1:$port, writes $bytes (a string or an array of strings
# written with pause => S seconds between them), and reads until the peer
# closes, timeout => S (default 5) of silence passes, or responses => N
# complete responses have arrived. Returns the raw bytes read; in list context
# also whether the peer closed (1), timed out (0), reset (-1) or refused the
# connection (-2).
sub http_raw {
	my ($port, $bytes, %o) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
		Timeout => 5);
	unless ($s) {
		Test::More::diag("connect 127.0.0.1:$port: $!");
		return wantarray ? ('', -2) : '';
	}
	binmode($s);
	local $SIG{PIPE} = 'IGNORE';
	my @parts = ref $bytes ? @$bytes : ($bytes);
	for my $i (0 .. $#parts) {
		my $off = 0;
		while ($off < length $parts[$i]) {
			my $n = syswrite($s, $parts[$i], length($parts[$i]) - $off, $off);
			last unless defined $n;
			$off += $n;
		}
		sleep($o{pause}) if $o{pause} && $i < $#parts;
	}
	shutdown($s, 1) if $o{half_close};
	my $timeout = $o{timeout} // scale(5);
	my $sel = IO::Select->new($s);
	my $data = '';
	my $state = 0;
	while (1) {
		last unless $sel->can_read($timeout);
		my $n = sysread($s, $data, 65536, length $data);
		if (!defined $n) {
			$state = -1;
			last;
		}
		if ($n == 0) {
			$state = 1;
			last;
		}
		if ($o{responses}) {
			my @r = parse_responses($data, $o{head} ? (head => 1) : ());
			last if @r >= $o{responses} && $r[-1]{complete};
		}
	}
	close($s);
	return wantarray ? ($data, $state) : $data;
}

# Splits raw bytes into responses: [{status, reason, version, headers => {lc => v},
# hlist, body, complete}]. 1xx interim responses are returned too.
sub parse_responses {
	my ($data, %o) = @_;
	my @out;
	while (length $data) {
		last unless $data =~ s/^(HTTP\/\d\.\d) (\d{3})([^\r\n]*)\r\n((?:[^\r\n]+\r\n)*)\r\n//;
		my ($ver, $st, $reason, $hblock) = ($1, $2, $3, $4);
		$reason =~ s/^ //;
		my $r = { version => $ver, status => $st, reason => $reason, hlist => [], headers => {} };
		for (split /\r\n/, $hblock) {
			my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
			push @{ $r->{hlist} }, [$k, $v];
			my $lk = lc $k;
			$r->{headers}{$lk} = exists $r->{headers}{$lk} ? "$r->{headers}{$lk}, $v" : $v;
		}
		push @out, $r;
		$r->{body} = '';
		if ($r->{status} < 200 || $r->{status} == 204 || $r->{status} == 304 || $o{head}) {
			$r->{complete} = 1;
			next;
		}
		my $h = $r->{headers};
		if (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
			$r->{chunked} = 1;
			while ($data =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
				my $len = hex $1;
				if ($len == 0) {
					if ($data =~ s/^((?:[^\r\n]+\r\n)*)\r\n//) {
						$r->{complete} = 1;
					}
					last;
				}
				if (length($data) < $len + 2) {
					$data = sprintf("%x\r\n", $len) . $data;
					last;
				}
				$r->{body} .= substr($data, 0, $len);
				substr($data, 0, $len + 2) = '';
			}
			last unless $r->{complete};
		} elsif (defined $h->{'content-length'}) {
			my ($len) = $h->{'content-length'} =~ /(\d+)/;
			$len //= 0;
			$r->{body} = substr($data, 0, $len);
			substr($data, 0, length $r->{body}) = '';
			$r->{complete} = length($r->{body}) == $len;
			last unless $r->{complete};
		} else {
			$r->{body} = $data;
			$data = '';
			$r->{until_close} = 1;
		}
	}
	return @out;
}

# One request on its own connection; returns the parsed final response (with
# raw and closed) or a {status => 0} when nothing parseable came back.
# Options: host, headers => [name, value, ...], body, version ('1.1'),
# keepalive (omit "Connection: close"), timeout.
sub http_request {
	my ($port, $method, $path, %o) = @_;
	my $ver = $o{version} // '1.1';
	my $req = "$method $path HTTP/$ver\r\n";
	$req .= "Host: " . ($o{host} // "127.0.0.1:$port") . "\r\n" unless $o{no_host};
	my @h = @{ $o{headers} // [] };
	while (my ($k, $v) = splice(@h, 0, 2)) {
		$req .= "$k: $v\r\n";
	}
	$req .= "Connection: close\r\n" unless $o{keepalive} || $ver eq '1.0';
	$req .= "Content-Length: " . length($o{body}) . "\r\n" if defined $o{body};
	$req .= "\r\n";
	$req .= $o{body} if defined $o{body};
	my ($raw, $state) = http_raw($port, $req, timeout => $o{timeout},
		$o{keepalive} ? (responses => 1) : (), $method eq 'HEAD' ? (head => 1) : ());
	my @r = grep { $_->{status} >= 200 } parse_responses($raw, $method eq 'HEAD' ? (head => 1) : ());
	my $r = $r[0] // { status => 0, headers => {}, body => '' };
	$r->{raw} = $raw;
	$r->{closed} = $state;
	return $r;
}

# A client connection for multi-request tests; read_response reads exactly
# one final response (skipping 1xx unless want_1xx) from it.
my %RBUF;

sub connect_port {
	my ($port) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
		Timeout => 5) or return undef;
	binmode($s);
	$RBUF{"$s"} = '';
	return $s;
}

sub send_bytes {
	my ($s, $data) = @_;
	return 0 unless $s;
	local $SIG{PIPE} = 'IGNORE';
	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($s, $data, length($data) - $off, $off);
		return 0 unless defined $n;
		$off += $n;
	}
	return 1;
}

# Returns the parsed response, or undef on timeout/EOF with nothing complete;
# in list context also 1 (peer closed), 0 (timeout / still open) or -1 (error).
# A response delimited by close is returned once the peer closes.
sub read_response {
	my ($s, %o) = @_;
	return wantarray ? (undef, -2) : undef unless $s;
	my $timeout = $o{timeout} // scale(5);
	my $buf = \$RBUF{"$s"};
	$$buf //= '';
	my $sel = IO::Select->new($s);
	my $end = time + $timeout;
	my $state = 0;
	while (1) {
		my $tmp = $$buf;
		while ($tmp =~ /^HTTP\/\d\.\d 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n/ && !$o{want_1xx}) {
			$tmp =~ s/^HTTP\/\d\.\d 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n//;
		}
		my @r = parse_responses($tmp, $o{head} ? (head => 1) : ());
		if (@r && $r[0]{complete}) {
			my $first = _consume_one(\$tmp, $o{head});
			$$buf = $tmp;
			return wantarray ? ($first, 0) : $first;
		}
		my $left = $end - time;
		last if $left <= 0;
		last unless $sel->can_read($left);
		my $n = sysread($s, $$buf, 65536, length $$buf);
		if (!defined $n || $n == 0) {
			$state = defined $n ? 1 : -1;
			my @p = parse_responses($$buf =~ s/^HTTP\/\d\.\d 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n//r);
			if (@p && $p[0]{until_close}) {
				$$buf = '';
				return wantarray ? ($p[0], $state) : $p[0];
			}
			last;
		}
	}
	return wantarray ? (undef, $state) : undef;
}

sub _consume_one {
	my ($ref, $head) = @_;
	my @r = parse_responses($$ref, $head ? (head => 1) : ());
	my $r = $r[0];
	# Drop exactly the bytes of the first response.
	$$ref =~ s/^HTTP\/\d\.\d \d{3}[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n//;
	if ($head || $r->{status} == 204 || $r->{status} == 304) {
		return $r;
	}
	if ($r->{chunked}) {
		while ($$ref =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
			my $len = hex $1;
			if ($len == 0) {
				$$ref =~ s/^(?:[^\r\n]+\r\n)*\r\n//;
				last;
			}
			substr($$ref, 0, $len + 2) = '';
		}
	} else {
		substr($$ref, 0, length $r->{body}) = '';
	}
	return $r;
}

# Runs wrk with @args; returns { requests, secs (how long it ran), non2xx,
# connect, read, write, timeout, rps, p50_ms, p99_ms, raw }.
sub wrk_run {
	my (@args) = @_;
	my $out = `wrk @args 2>&1`;
	return wrk_parse($out);
}

sub _ms {
	my ($v, $u) = @_;
	return $v / 1000 if $u eq 'us';
	return $v if $u eq 'ms';
	return $v * 1000 if $u eq 's';
	return $v * 60000 if $u eq 'm';
	return undef;
}

sub wrk_parse {
	my ($out) = @_;
	my %r = (raw => $out, non2xx => 0, connect => 0, read => 0, write => 0, timeout => 0);
	($r{requests}, $r{secs}) = ($1, _ms($2, $3) / 1000) if $out =~ /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b/m;
	$r{non2xx} = $1 if $out =~ /Non-2xx or 3xx responses:\s*(\d+)/;
	if ($out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/) {
		@r{qw(connect read write timeout)} = ($1, $2, $3, $4);
	}
	$r{rps} = $1 if $out =~ /Requests\/sec:\s*([\d.]+)/;
	$r{p50_ms} = _ms($1, $2) if $out =~ /^\s*50%\s+([\d.]+)(us|ms|s|m)\b/m;
	$r{p99_ms} = _ms($1, $2) if $out =~ /^\s*99%\s+([\d.]+)(us|ms|s|m)\b/m;
	return \%r;
}

# The test PKI from t/lib/mkcerts.sh, made once per test in its temp dir (keys
# are never committed). Returns the directory: root.pem, web.pem/web-key.pem …
my $CERTS;
sub test_certs {
	return $CERTS if $CERTS;
	my $lib = $INC{'Wingman.pm'} =~ s{/[^/]+$}{}r;
	my $dir = tmpdir() . '/certs';
	system("$lib/mkcerts.sh", $dir) == 0 or die "mkcerts.sh failed";
	return $CERTS = $dir;
}

sub http_get {
	my ($port, $path, %o) = @_;
	return http_request($port, 'GET', $path, %o);
}

# Raw bytes of one request with "Connection: close": $r = {method (GET), path,
# host, headers => [name, value, ...], body}.
sub _close_request {
	my ($port, $r) = @_;
	my $m = $r->{method} // 'GET';
	my $q = "$m $r->{path} HTTP/1.1\r\nHost: " . ($r->{host} // "127.0.0.1:$port") . "\r\n";
	my @h = @{ $r->{headers} // [] };
	while (my ($k, $v) = splice(@h, 0, 2)) {
		$q .= "$k: $v\r\n";
	}
	$q .= "Connection: close\r\n";
	$q .= "Content-Length: " . length($r->{body}) . "\r\n" if defined $r->{body};
	return "$q\r\n" . ($r->{body} // '');
}

# Drives many client connections at once, one request per connection. $next
# is called as $next->($client) whenever client $client (0 .. $nclients-1) is
# free and returns the next request ({method, path, host, headers, body,
# local_addr}) or undef when that client is done. Returns every response in
# the order requests started: {status, headers, body, complete, client, req,
# t_start, elapsed} (status 0 when nothing parseable came back, error set
# when the connection failed). Gives up after timeout => S (default 20).
sub _drive {
	my ($port, $nclients, $next, %o) = @_;
	my $deadline = time + ($o{timeout} // scale(20));
	my (@out, %live);
	my $sel = IO::Select->new;
	local $SIG{PIPE} = 'IGNORE';
	my $start;
	$start = sub {
		my ($ci) = @_;
		my $r = $next->($ci) or return;
		my $res = { client => $ci, req => $r, t_start => time, status => 0, headers => {}, body => '' };
		push @out, $res;
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
			Timeout => 5, $r->{local_addr} ? (LocalAddr => $r->{local_addr}) : ());
		unless ($s) {
			$res->{error} = "connect: $!";
			$res->{elapsed} = time - $res->{t_start};
			return;
		}
		binmode($s);
		my $bytes = _close_request($port, $r);
		my $off = 0;
		while ($off < length $bytes) {
			my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
			last unless defined $n;
			$off += $n;
		}
		$live{ fileno($s) } = { s => $s, res => $res, buf => '' };
		$sel->add($s);
	};
	my $finish = sub {
		my ($st) = @_;
		my $res = $st->{res};
		my ($final) = grep { $_->{status} >= 200 } parse_responses($st->{buf});
		if ($final) {
			$res->{$_} = $final->{$_} for keys %$final;
		}
		$res->{raw} = $st->{buf};
		$res->{elapsed} = time - $res->{t_start};
		$sel->remove($st->{s});
		delete $live{ fileno($st->{s}) };
		close($st->{s});
		$start->($res->{client});
	};
	$start->($_) for 0 .. $nclients - 1;
	while (%live) {
		my $left = $deadline - time;
		last if $left <= 0;
		for my $s ($sel->can_read($left > 0.5 ? 0.5 : $left)) {
			my $st = $live{ fileno($s) } or next;
			my $n = sysread($s, $st->{buf}, 65536, length $st->{buf});
			if (!$n) {
				$finish->($st);
				next;
			}
			my @r = grep { $_->{status} >= 200 } parse_responses($st->{buf});
			$finish->($st) if @r && $r[0]{complete};
		}
	}
	for my $st (values %live) {
		$st->{res}{timed_out} = 1;
		$sel->remove($st->{s});
		close($st->{s});
		$st->{res}{elapsed} = time - $st->{res}{t_start};
	}
	return @out;
}

# Sends every request of @$reqs at once, each on its own connection (see
# _drive for request and response fields); returns the responses in order.
sub http_parallel {
	my ($port, $reqs, %o) = @_;
	my @todo = map { { %$_ } } @$reqs;
	$_->{path} //= '/' for @todo;
	my @sent = (0) x @todo;
	my @res = _drive($port, scalar @todo, sub {
		my ($ci) = @_;
		return undef if $sent[$ci]++;
		return $todo[$ci];
	}, %o);
	return sort { $a->{client} <=> $b->{client} } @res;
}

# Closed-loop load: clients => N connections-in-turn, each sending a new
# request as soon as the previous one is answered, until duration => S has
# passed (or requests => M were started in total). request => sub { my
# ($client, $i) = @_; return {path, headers, ...} } (default GET path => P).
# Returns every response (see _drive).
sub http_loop {
	my ($port, %o) = @_;
	my $end = time + ($o{duration} // 1);
	my $i = 0;
	my $mk = $o{request} // sub { return { path => $o{path} // '/', headers => $o{headers} } };
	return _drive($port, $o{clients} // 4, sub {
		my ($ci) = @_;
		return undef if time >= $end || (defined $o{requests} && $i >= $o{requests});
		return $mk->($ci, $i++);
	}, timeout => ($o{duration} // 1) + ($o{timeout} // scale(10)));
}

# Load on 127.0.0.1:$port while a test changes something: wrk keep-alive
# (wrk => [its options], default -t1 -c8; --timeout 5s) for secs => S, and a
# client opening a new connection per request until margin => M (default 1)
# seconds before. ->finish waits for both and returns wrk's numbers
# (wrk_parse) and the new-connection client's {n, bad (not a 200), refused}.
sub start_load {
	my ($port, %o) = @_;
	my $secs = $o{secs};
	my $id = $Wingman::_n++;
	my $self = bless { out => tmpdir() . "/wrk-$id.out", loop_out => tmpdir() . "/loop-$id.out" }, 'Wingman::Load';
	$self->{wrk} = _spawn(cmd => ['wrk', @{ $o{wrk} // ['-t1', '-c8'] }, '-d', "${secs}s", '--timeout', '5s',
		"http://127.0.0.1:$port/"], stdout => $self->{out}, stderr => $self->{out}, name => 'wrk');
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		my ($n, $bad, $refused) = (0, 0, 0);
		my $end = time + $secs - ($o{margin} // 1);
		while (time < $end) {
			my $r = http_get($port, '/');
			$n++;
			$refused++ if ($r->{closed} // 0) == -2;
			$bad++ unless ($r->{status} // 0) == 200;
		}
		spew($self->{loop_out}, "$n $bad $refused\n");
		_exit(0);
	}
	_register($pid, 0, 'new-connection client');
	$self->{loop} = $pid;
	return $self;
}

# Runs "wingman -t -c FILE" on $yaml; returns (exit code, output, file).
sub wingman_check {
	my ($yaml, $name) = @_;
	return wingman_run($yaml, name => $name, args => ['-t']);
}

# Runs "wingman -c FILE @args" on $yaml (name => the file's name, args =>
# [...]) and waits for it to exit; returns (exit code, output, file), exit
# code -1 when it ran past 10 s (then killed).
sub wingman_run {
	my ($yaml, %o) = @_;
	my $dir = tmpdir();
	my $n = $Wingman::_n++;
	my $file = "$dir/" . ($o{name} // "check-$n") . ".yaml";
	spew($file, $yaml);
	my $out = "$dir/check-$n.out";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>', $out);
		open(STDERR, '>&', \*STDOUT);
		{ exec(wingman_bin(), @{ $o{args} // [] }, '-c', $file) }
		_exit(127);
	}
	my $ok = wait_for(sub { waitpid($pid, WNOHANG) == $pid }, scale(10));
	unless ($ok) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
		return (-1, slurp($out), $file);
	}
	return ($? >> 8, slurp($out), $file);
}

# Runs curl with -sS and @args; returns stdout (list context: stdout, exit
# code, stderr).
sub curl {
	my (@args) = @_;
	my $err = tmpdir() . "/curl.err.$$";
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if ($pid == 0) {
		open(STDERR, '>', $err);
		open(STDIN, '<', '/dev/null');
		{ exec('curl', '-sS', '--max-time', scale(30), @args) }
		_exit(127);
	}
	binmode($fh);
	local $/;
	my $out = <$fh> // '';
	close($fh);
	my $rc = $? >> 8;
	my $e = slurp($err);
	unlink $err;
	return wantarray ? ($out, $rc, $e) : $out;
}

# ---------------------------------------------------------------- objects

package Wingman::Process;

use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

sub pid { $_[0]{pid} }
sub port { $_[0]{ports}[0] }
sub ports { @{ $_[0]{ports} } }
sub admin_port { $_[0]{admin_port} }
sub conf { $_[0]{conf} }
sub stderr { Wingman::slurp($_[0]{stderr}) }
sub stdout { Wingman::slurp($_[0]{stdout}) }
sub access_log_path { $_[0]{access_log} }
sub access_log { Wingman::slurp($_[0]{access_log}) }
sub access_log_lines { grep { length } split /\n/, $_[0]->access_log }

sub alive {
	my ($self) = @_;
	return 0 if defined $self->{status};
	my $r = waitpid($self->{pid}, WNOHANG);
	if ($r == $self->{pid}) {
		$self->{status} = $?;
		delete $CHILDREN{$self->{pid}};
		return 0;
	}
	return $r == 0;
}

sub signal {
	my ($self, $sig) = @_;
	return kill($sig, $self->{pid});
}
sub hup { $_[0]->signal('HUP') }
sub usr1 { $_[0]->signal('USR1') }

# Waits for exit; returns the raw wait status or undef on timeout.
sub wait_exit {
	my ($self, $timeout) = @_;
	Wingman::wait_for(sub { !$self->alive }, $timeout // Wingman::scale(10));
	return $self->{status};
}

# SIGTERM and wait; returns the wait status (undef if it did not exit).
sub term {
	my ($self, $timeout) = @_;
	$self->signal('TERM');
	return $self->wait_exit($timeout);
}

# Rewrites the config file (for reload tests).
sub write_conf {
	my ($self, $yaml) = @_;
	Wingman::spew($self->{conf} . ".tmp", $yaml);
	rename($self->{conf} . ".tmp", $self->{conf}) or die "rename: $!";
}

sub admin {
	my ($self, $path, %o) = @_;
	return Wingman::admin_get($self->{admin_port}, $path, %o);
}

# /stats parsed into { name => value }.
sub stats {
	my ($self, $filter) = @_;
	my $body = $self->admin('/stats' . (defined $filter ? "?filter=$filter" : ''));
	my %s;
	for (split /\n/, $body // '') {
		$s{$1} = $2 if /^(\S+): (.*)$/;
	}
	return \%s;
}

sub stat {
	my ($self, $name) = @_;
	my $v = $self->stats->{$name};
	return defined $v ? $v : 0;
}

# Waits for the first access-log line matching $re; returns it or ''.
sub log_line {
	my ($self, $re, $timeout) = @_;
	my $line;
	unless (defined $self->{access_log}) {
		Test::More::diag('log_line: no access_log path found (write access_log: { path: ... } in flow style)');
		return '';
	}
	Wingman::wait_for(sub { ($line) = grep { $_ =~ $re } $self->access_log_lines; $line },
		$timeout // Wingman::scale(5));
	return $line // '';
}

# /clusters for one cluster: { "ip:port" => { leaf => value } }.
sub cluster_hosts {
	my ($self, $cluster) = @_;
	my %h;
	for (split /\n/, $self->admin('/clusters') // '') {
		next unless /^\Q$cluster\E::([^:]+:\d+)::([^:]+)::(.*)$/;
		$h{$1}{$2} = $3;
	}
	return \%h;
}

sub kill_now {
	my ($self) = @_;
	return if defined $self->{status};
	my $st = Wingman::_kill_reap($self->{pid}, 3);
	$self->{status} = $st if defined $st;
}

sub DESTROY {
	my ($self) = @_;
	return unless $$ == $MAIN_PID;
	local ($?, $!, $@);
	$self->kill_now if $CHILDREN{ $self->{pid} };
}

package Wingman::Load;

sub finish {
	my ($self) = @_;
	waitpid($self->{loop}, 0);
	delete $CHILDREN{ $self->{loop} };
	Wingman::stop_process($self->{wrk}, 'INT', 10);
	my ($n, $bad, $refused) = split ' ', Wingman::slurp($self->{loop_out});
	return (Wingman::wrk_parse(Wingman::slurp($self->{out})), { n => $n // 0, bad => $bad // -1, refused => $refused // -1 });
}

package Wingman::Nginx;

sub pid { $_[0]{pid} }
sub port { $_[0]{port} }
sub dir { $_[0]{dir} }
sub html { $_[0]{html} }
sub error_log { Wingman::slurp("$_[0]{dir}/error.log") }
sub access_log { Wingman::slurp("$_[0]{dir}/access.log") }

sub stop {
	my ($self) = @_;
	Wingman::_kill_reap($self->{pid}, 3, 'QUIT') if $CHILDREN{ $self->{pid} };
}

sub DESTROY {
	my ($self) = @_;
	return unless $$ == $MAIN_PID;
	local ($?, $!, $@);
	Wingman::_kill_reap($self->{pid}, 2) if $CHILDREN{ $self->{pid} };
}

package Wingman::Backend;

sub pid { $_[0]{pid} }
sub port { $_[0]{port} }
sub log { Wingman::slurp($_[0]{log}) }

sub stop {
	my ($self) = @_;
	Wingman::_kill_reap($self->{pid}, 1) if $CHILDREN{ $self->{pid} };
}

# Scripted backends only (start_backend with id/script/log): the requests
# seen so far, oldest first: [{n, conn (one per connection), t, method,
# path, headers => {lc => v}, body_length, body_md5, chunked}].
sub id { $_[0]{id} }

sub requests {
	my ($self) = @_;
	my @r;
	for (split /\n/, Wingman::slurp($self->{reqlog})) {
		my $r = eval { JSON::PP::decode_json($_) } or next;
		push @r, $r;
	}
	return @r;
}

sub count { scalar(my @r = $_[0]->requests) }

# Number of distinct upstream connections the requests came on.
sub conns {
	my %c = map { $_->{conn} => 1 } $_[0]->requests;
	return scalar keys %c;
}

# x-envoy-attempt-count of each request ('' when absent).
sub attempts { map { $_->{headers}{'x-envoy-attempt-count'} // '' } $_[0]->requests }

# Forgets the requests seen and restarts the script from its first action.
sub reset {
	my ($self) = @_;
	Wingman::spew($self->{reqlog}, '');
	Wingman::spew($self->{seq}, '0');
}

# Waits until at least $n requests were seen; returns the count.
sub wait_count {
	my ($self, $n, $timeout) = @_;
	my $c = 0;
	Wingman::wait_for(sub { ($c = $self->count) >= $n }, $timeout // Wingman::scale(5));
	return $c;
}

sub DESTROY {
	my ($self) = @_;
	return unless $$ == $MAIN_PID;
	local ($?, $!, $@);
	$self->stop;
}

1;
