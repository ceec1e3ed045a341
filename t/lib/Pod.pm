# Pods on one machine, for the 5xx tests: a "node" network namespace holding a
# bridge, and one network namespace + veth pair + cgroup v2 group per pod, like
# a CNI would make them. Processes started in a pod run in its netns (through
# `ip netns exec`, so /etc/netns/NAME/hosts replaces /etc/hosts) and in its
# cgroup (where `wingman intercept` attaches). Needs root. Everything made here
# (namespaces, veths, cgroups, /etc/netns dirs, BPF pins, processes) is removed
# when the Pod::Net object goes away or the test exits, also on failure.
package Pod;

use strict;
use warnings;

use POSIX qw(_exit);
use Time::HiRes qw(sleep time);

use Wingman ();

my @NETS;

sub cgroup2_root {
	open(my $fh, '<', '/proc/self/mounts') or return undef;
	while (<$fh>) {
		my (undef, $dir, $type) = split;
		return $dir if $type eq 'cgroup2';
	}
	return undef;
}

# Why pod tests cannot run here, or undef when they can.
sub unavailable {
	return 'needs root' if $> != 0;
	return 'no cgroup v2 mount' unless cgroup2_root();
	for my $p (qw(ip iptables nginx curl setpriv)) {
		return "$p not installed" unless Wingman::have_prog($p);
	}
	return undef;
}

sub sh_quote {
	my ($s) = @_;
	return $s if $s =~ /^[\w.,:\/=@%+-]+$/;
	$s =~ s/'/'\\''/g;
	return "'$s'";
}

sub xsys {
	my (@cmd) = @_;
	my $out = `@{[join ' ', map { sh_quote($_) } @cmd]} 2>&1`;
	die "failed ($?): @cmd\n$out" if $?;
	return $out;
}

# ---------------------------------------------------------------- the node

package Pod::Net;

sub new {
	my ($class, %o) = @_;
	my $tag = sprintf('wm%d', $$ % 100000);
	my $self = bless {
		tag => $tag, node => "$tag-node", subnet => $o{subnet} // '10.77.0',
		cgroot => Pod::cgroup2_root() . "/wingman-test-$tag",
		pods => [], pids => [], wingmen => [],
	}, $class;
	push @NETS, $self;
	mkdir $self->{cgroot} or die "mkdir $self->{cgroot}: $!";
	Pod::xsys('ip', 'netns', 'add', $self->{node});
	$self->node_ip('link', 'set', 'lo', 'up');
	$self->node_ip('link', 'add', 'br0', 'type', 'bridge');
	$self->node_ip('addr', 'add', "$self->{subnet}.1/24", 'dev', 'br0');
	$self->node_ip('link', 'set', 'br0', 'up');
	# Service virtual IPs lead nowhere without a sidecar: refuse them at once.
	Pod::xsys('ip', 'netns', 'exec', $self->{node}, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
	$self->node_ip('route', 'add', 'prohibit', '10.96.0.0/12');
	return $self;
}

sub node_ip {
	my ($self, @args) = @_;
	return Pod::xsys('ip', '-n', $self->{node}, @args);
}

# A pod: its own netns with eth0 on the bridge at SUBNET.$n, and a cgroup.
# hosts => "text" becomes its /etc/hosts.
sub pod {
	my ($self, $name, %o) = @_;
	my $ns = "$self->{tag}-$name";
	my $n = 2 + @{ $self->{pods} };
	my $pod = bless {
		name => $name, ns => $ns, ip => "$self->{subnet}.$n", net => $self,
		cgroup => "$self->{cgroot}/$name",
	}, 'Pod::Pod';
	push @{ $self->{pods} }, $pod;
	mkdir $pod->{cgroup} or die "mkdir $pod->{cgroup}: $!";
	Pod::xsys('ip', 'netns', 'add', $ns);
	my $v = substr("v$name", 0, 15);
	$self->node_ip('link', 'add', $v, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', $ns);
	$self->node_ip('link', 'set', $v, 'master', 'br0');
	$self->node_ip('link', 'set', $v, 'up');
	$pod->ip_cmd('link', 'set', 'lo', 'up');
	$pod->ip_cmd('addr', 'add', "$pod->{ip}/24", 'dev', 'eth0');
	$pod->ip_cmd('link', 'set', 'eth0', 'up');
	$pod->ip_cmd('route', 'add', 'default', 'via', "$self->{subnet}.1");
	my $hosts = "127.0.0.1 localhost\n::1 localhost\n$pod->{ip} $name\n" . ($o{hosts} // '');
	mkdir '/etc/netns';
	mkdir "/etc/netns/$ns" or die "mkdir /etc/netns/$ns: $!";
	Wingman::spew("/etc/netns/$ns/hosts", $hosts);
	return $pod;
}

sub cleanup {
	my ($self) = @_;
	return if $self->{cleaned}++;
	for my $pid (reverse @{ $self->{pids} }) {
		Wingman::stop_process($pid, 'TERM', Wingman::scale(3));
	}
	for my $pod (@{ $self->{pods} }) {
		# Anything left in the cgroup (a client a test died in) goes too.
		if (open(my $fh, '<', "$pod->{cgroup}/cgroup.procs")) {
			my @left = map { chomp; $_ } <$fh>;
			kill 'KILL', @left if @left;
		}
		if ($pod->{intercepted}) {
			my $out = `$ENV{WINGMAN} intercept remove --cgroup $pod->{cgroup} 2>&1`;
			Test::More::diag("intercept remove: $out") if $?;
		}
		system('ip', 'netns', 'del', $pod->{ns});
		unlink "/etc/netns/$pod->{ns}/hosts";
		rmdir "/etc/netns/$pod->{ns}";
		for (1 .. 100) {
			last if rmdir $pod->{cgroup};
			Time::HiRes::sleep(0.05);
		}
		Test::More::diag("cannot remove $pod->{cgroup}: $!") if -d $pod->{cgroup};
	}
	system('ip', 'netns', 'del', $self->{node});
	rmdir $self->{cgroot};
	for my $w (@{ $self->{wingmen} }) {
		my $rep = Wingman::sanitizer_report(Wingman::slurp($w->{stderr}));
		next unless length $rep;
		Test::More::diag("sanitizer report from pod wingman ($w->{stderr}):\n$rep");
		$? ||= 1;
	}
}

sub DESTROY { $_[0]->cleanup }

# ---------------------------------------------------------------- a pod

package Pod::Pod;

use Time::HiRes qw(sleep time);

sub ip_cmd {
	my ($self, @args) = @_;
	return Pod::xsys('ip', '-n', $self->{ns}, @args);
}

# The argv that runs @cmd in the pod: joins the cgroup, then the netns.
sub wrap {
	my ($self, %o) = @_;
	my @cmd = @{ $o{cmd} };
	unshift @cmd, 'setpriv', "--reuid=$o{uid}", "--regid=$o{uid}", '--clear-groups' if defined $o{uid};
	return ('/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"', $self->{cgroup},
		$self->{ns}, @cmd);
}

# Starts a long-running process in the pod; stopped at cleanup.
sub spawn {
	my ($self, %o) = @_;
	my $pid = Wingman::spawn(cmd => [$self->wrap(%o)], stdout => $o{stdout}, stderr => $o{stderr},
		env => $o{env}, name => $o{name} // 'pod');
	push @{ $self->{net}{pids} }, $pid;
	return $pid;
}

# Runs a command in the pod to completion: (exit status, stdout+stderr).
sub run {
	my ($self, %o) = @_;
	my $cmd = join ' ', map { Pod::sh_quote($_) } $self->wrap(%o);
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
}

# Polls until something in the pod accepts on $host:$port.
sub wait_port {
	my ($self, $port, $host, $timeout) = @_;
	$host //= '127.0.0.1';
	my $probe = "use IO::Socket::INET; exit(IO::Socket::INET->new(PeerAddr => '$host', PeerPort => $port, "
		. "Timeout => 1) ? 0 : 1)";
	my $ok = Wingman::wait_for(sub {
		system('ip', 'netns', 'exec', $self->{ns}, 'perl', '-e', $probe) == 0;
	}, $timeout // Wingman::scale(10), 0.1);
	die "pod $self->{name}: nothing accepts on $host:$port\n" unless $ok;
	return 1;
}

# Starts wingman in the pod as uid 1337 (the uid intercept excludes).
sub start_wingman {
	my ($self, $yaml, %o) = @_;
	my $dir = Wingman::tmpdir();
	chmod 0755, $dir;
	my $conf = "$dir/pod-$self->{name}-wingman.yaml";
	Wingman::spew($conf, $yaml);
	chmod 0644, $conf;
	my $err = "$dir/pod-$self->{name}-wingman.stderr";
	Wingman::spew($err, '');
	my $pid = $self->spawn(cmd => [$ENV{WINGMAN}, '-c', $conf, @{ $o{args} // [] }], uid => $o{uid} // 1337,
		stdout => $err, stderr => $err, name => "wingman-$self->{name}");
	push @{ $self->{net}{wingmen} }, { stderr => $err };
	$self->{wingman_pid} = $pid;
	$self->{wingman_conf} = $conf;
	$self->{wingman_stderr} = $err;
	$self->wait_port($_, '127.0.0.1') for @{ $o{wait_ports} // [15000] };
	return $pid;
}

sub wingman_stderr { Wingman::slurp($_[0]{wingman_stderr}) }

# Starts nginx in the pod with $server (a server {} block, or several).
sub start_nginx {
	my ($self, $server, %o) = @_;
	my $dir = Wingman::tmpdir() . "/pod-$self->{name}-nginx";
	mkdir $dir;
	Wingman::spew("$dir/nginx.conf", <<"EOF");
daemon off;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 1024; }
http {
	access_log $dir/access.log;
	default_type text/plain;
	client_body_temp_path $dir/tmp-body;
	proxy_temp_path $dir/tmp-proxy;
	fastcgi_temp_path $dir/tmp-fastcgi;
	uwsgi_temp_path $dir/tmp-uwsgi;
	scgi_temp_path $dir/tmp-scgi;
$server
}
EOF
	my $pid = $self->spawn(cmd => ['nginx', '-p', "$dir/", '-e', "$dir/error.log", '-c', "$dir/nginx.conf"],
		stderr => "$dir/stderr", name => "nginx-$self->{name}");
	$self->wait_port($_) for @{ $o{wait_ports} // [] };
	return $pid;
}

# A TCP server on $port: reads until the client half-closes, then answers
# "peer=IP len=N md5=HEX\n" followed by every byte it read, and closes.
sub start_tcp_echo {
	my ($self, $port) = @_;
	my $prog = <<'EOF';
use IO::Socket::INET; use Digest::MD5 qw(md5_hex);
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => $ARGV[0], Listen => 64, ReuseAddr => 1) or die $!;
while (my $c = $l->accept) {
	next if fork;
	my $d = ''; 1 while sysread($c, $d, 65536, length $d);
	my $out = sprintf("peer=%s len=%d md5=%s\n", $c->peerhost, length $d, md5_hex($d)) . $d;
	while (length $out) { my $n = syswrite($c, $out) or last; substr($out, 0, $n) = ''; }
	exit 0;
}
EOF
	my $pid = $self->spawn(cmd => ['perl', '-e', $prog, $port], name => "tcp-echo-$self->{name}");
	$self->wait_port($port);
	return $pid;
}

# Client for start_tcp_echo, run in this pod: sends $len random bytes to
# host:port, half-closes, reads the answer. Returns (header line, ok) where ok
# says the echoed bytes are exactly the ones sent.
sub tcp_echo {
	my ($self, $host, $port, $len) = @_;
	my $prog = <<'EOF';
use IO::Socket::INET; use Digest::MD5 qw(md5_hex);
my ($h, $p, $len) = @ARGV;
my $d = join '', map { chr(int(rand(256))) } 1 .. $len;
my $c = IO::Socket::INET->new(PeerAddr => $h, PeerPort => $p, Timeout => 5) or die "connect: $!\n";
my $pid = fork;
if (!$pid) { my $o = $d; while (length $o) { my $n = syswrite($c, $o) or exit 1; substr($o, 0, $n) = ''; }
	shutdown($c, 1); exit 0; }
my $in = ''; 1 while sysread($c, $in, 65536, length $in);
waitpid($pid, 0);
my ($head, $rest) = split /\n/, $in, 2;
printf "%s\nsent=%s echoed=%s\n", $head // '', md5_hex($d), md5_hex($rest // '');
EOF
	my ($rc, $out) = $self->run(cmd => ['perl', '-e', $prog, $host, $port, $len]);
	my ($head) = $out =~ /^(peer=.*)$/m;
	my ($sent, $echoed) = $out =~ /sent=(\w+) echoed=(\w+)/;
	return ($head // $out, defined $sent && $sent eq $echoed && $head =~ /md5=$sent/);
}

sub curl {
	my ($self, @args) = @_;
	return $self->run(cmd => ['curl', '-sS', '--max-time', Wingman::scale(10), @args]);
}

sub intercept {
	my ($self, $cmd, @args) = @_;
	$self->{intercepted} = 1 if $cmd eq 'install';
	my $out = `$ENV{WINGMAN} intercept $cmd --cgroup $self->{cgroup} --netns /run/netns/$self->{ns} @args 2>&1`;
	return ($? >> 8, $out);
}

# istio-init's rules (iptables REDIRECT, nat table) in the pod's netns.
sub iptables_redirect {
	my ($self, %o) = @_;
	my ($out, $in, $uid) = ($o{outbound_port} // 15001, $o{inbound_port} // 15006, $o{uid} // 1337);
	my @rules = (
		(map { [qw(-t nat -A OUTPUT -p tcp --dport), $_, qw(-j RETURN)] } @{ $o{exclude_ports} // [] }),
		[qw(-t nat -N ISTIO_INBOUND)], [qw(-t nat -N ISTIO_REDIRECT)], [qw(-t nat -N ISTIO_IN_REDIRECT)],
		[qw(-t nat -N ISTIO_OUTPUT)],
		[qw(-t nat -A ISTIO_INBOUND -p tcp --dport 15000 -j RETURN)],
		[qw(-t nat -A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN)],
		[qw(-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT)],
		[qw(-t nat -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports), $in],
		[qw(-t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports), $out],
		[qw(-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND)],
		[qw(-t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT)],
		[qw(-t nat -A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN)],
		[qw(-t nat -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner), $uid, qw(-j ISTIO_IN_REDIRECT)],
		[qw(-t nat -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner), $uid, qw(-j RETURN)],
		[qw(-t nat -A ISTIO_OUTPUT -m owner --uid-owner), $uid, qw(-j RETURN)],
		[qw(-t nat -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN)],
		[qw(-t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT)],
	);
	Pod::xsys('ip', 'netns', 'exec', $self->{ns}, 'iptables', @$_) for @rules;
}

sub nat_rules {
	my ($self) = @_;
	return join '', grep { !/^(#|\*|:|COMMIT)/ } split /^/, `ip netns exec $self->{ns} iptables-save -t nat 2>&1`;
}

# ---------------------------------------------------------------- exit

package Pod;

END {
	my $status = $?;
	$_->cleanup for @NETS;
	$? = $status || $?;
}

$SIG{INT} = $SIG{TERM} = sub { exit 1 };

1;
