# conf/k8s/: offline checks of the injection example: every document is a
# well-formed Kubernetes object, the Deployment is internally consistent
# (selector, volumes, probe ports, ConfigMap), the init container installs the
# eBPF interception with exactly the capabilities it needs and no iptables,
# the sidecar runs as the uid interception excludes, and the ConfigMap's
# wingman.yaml passes `wingman -t`. No cluster, no network.
use strict;
use warnings;
use Test::More;
use Wingman;

eval { require YAML::XS; 1 } or plan skip_all => 'YAML::XS (libyaml-libyaml-perl) not installed';

my $dir = ($ENV{WINGMAN_SRCDIR} // '.') . '/conf/k8s';
my @files = glob("$dir/*.yaml");
ok(@files >= 2, 'manifests found') or BAIL_OUT("no manifests in $dir");

my (@docs, %by_kind);
for my $f (@files) {
	my @d = eval { YAML::XS::LoadFile($f) };
	ok(!$@, "$f parses") or diag($@);
	for my $doc (grep { defined } @d) {
		my $where = "$f: $doc->{kind}/" . ($doc->{metadata}{name} // '?');
		ok($doc->{apiVersion} && $doc->{kind} && $doc->{metadata}{name}, "$where: apiVersion, kind, metadata.name");
		like($doc->{metadata}{name}, qr/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "$where: DNS-1123 name");
		push @docs, $doc;
		push @{ $by_kind{$doc->{kind}} }, $doc;
	}
}

my %api = (Deployment => 'apps/v1', ConfigMap => 'v1', Service => 'v1', Secret => 'v1');
is($_->{apiVersion}, $api{$_->{kind}}, "$_->{kind}/$_->{metadata}{name}: apiVersion") for @docs;

my ($dep) = grep { $_->{metadata}{name} eq 'was' } @{ $by_kind{Deployment} // [] };
ok($dep, 'the was Deployment') or BAIL_OUT('no was Deployment');
my $spec = $dep->{spec};
my $pod = $spec->{template}{spec};
my $labels = $spec->{template}{metadata}{labels};
for my $k (keys %{ $spec->{selector}{matchLabels} }) {
	is($labels->{$k}, $spec->{selector}{matchLabels}{$k}, "selector $k matches the template");
}
my %vol = map { $_->{name} => $_ } @{ $pod->{volumes} };
my @all = (@{ $pod->{initContainers} // [] }, @{ $pod->{containers} });
my %names;
for my $c (@all) {
	ok($c->{name} && $c->{image}, "container $c->{name}: name and image");
	ok(!$names{ $c->{name} }++, "container $c->{name}: unique name");
	for my $m (@{ $c->{volumeMounts} // [] }) {
		ok($vol{ $m->{name} }, "$c->{name}: mount $m->{name} names a volume");
		like($m->{mountPath}, qr/^\//, "$c->{name}: mount $m->{name} path is absolute");
	}
	my %ports;
	for my $p (@{ $c->{ports} // [] }) {
		like($p->{containerPort}, qr/^\d+$/, "$c->{name}: port $p->{name} is a number");
		ok(!$ports{ $p->{containerPort} }++, "$c->{name}: port $p->{containerPort} once");
		ok($p->{containerPort} >= 1 && $p->{containerPort} <= 65535, "$c->{name}: port in range");
	}
	for my $probe (grep { $c->{$_} } qw(readinessProbe livenessProbe startupProbe)) {
		my $port = $c->{$probe}{httpGet}{port};
		next unless defined $port;
		ok(grep({ $_->{containerPort} eq $port || ($_->{name} // '') eq $port } @{ $c->{ports} }),
			"$c->{name}: $probe port $port is declared");
	}
	for my $q (qw(requests limits)) {
		ok($c->{resources}{$q}{cpu} && $c->{resources}{$q}{memory}, "$c->{name}: resources.$q")
			if $c->{name} =~ /^wingman/;
	}
}
for my $v (values %vol) {
	next unless $v->{configMap};
	ok(grep({ $_->{metadata}{name} eq $v->{configMap}{name} } @{ $by_kind{ConfigMap} }),
		"volume $v->{name}: ConfigMap $v->{configMap}{name} is in conf/k8s");
}
ok($vol{bpffs} && $vol{bpffs}{hostPath}{path} eq '/sys/fs/bpf', 'bpffs hostPath volume');
ok($vol{cgroup} && $vol{cgroup}{hostPath}{path} eq '/sys/fs/cgroup', 'cgroup hostPath volume');
ok($vol{'wingman-certs'} && $vol{'wingman-certs'}{secret}, 'certs from a Secret');
ok($pod->{shareProcessNamespace}, 'shareProcessNamespace for the reloader');

my ($init) = grep { $_->{name} eq 'wingman-init' } @{ $pod->{initContainers} };
ok($init, 'init container') or BAIL_OUT('no wingman-init');
my $script = join ' ', @{ $init->{command} // [] }, @{ $init->{args} // [] };
like($script, qr/wingman intercept install\b/, 'init runs wingman intercept install');
unlike($script, qr/iptables/, 'init does not touch iptables');
my %caps = map { $_ => 1 } @{ $init->{securityContext}{capabilities}{add} // [] };
ok($caps{BPF} && $caps{NET_ADMIN}, 'init has CAP_BPF and CAP_NET_ADMIN');
ok(!$init->{securityContext}{privileged}, 'init is not privileged');
is_deeply([grep { !/^(BPF|NET_ADMIN|SYS_RESOURCE)$/ } keys %caps], [], 'no other capability');
my ($xuid) = $script =~ /--exclude-uid (\d+)/;
my ($oport) = $script =~ /--outbound-port (\d+)/;
my ($iport) = $script =~ /--inbound-port (\d+)/;
my ($xports) = $script =~ /--exclude-ports ([\d,]+)/;

my ($side) = grep { $_->{name} eq 'wingman' } @{ $pod->{containers} };
ok($side, 'sidecar container') or BAIL_OUT('no wingman sidecar');
is($side->{securityContext}{runAsUser}, $xuid, 'sidecar runs as the uid interception excludes');
is($side->{securityContext}{runAsUser}, 1337, '… 1337');
is_deeply($side->{securityContext}{capabilities}{drop}, ['ALL'], 'sidecar drops every capability');
my %sp = map { $_->{containerPort} => 1 } @{ $side->{ports} };
ok($sp{$_}, "sidecar declares port $_") for 15001, 15006, 15000, 15090;
is($side->{readinessProbe}{httpGet}{path}, '/ready', 'readiness on /ready');
like(join(' ', @{ $side->{lifecycle}{preStop}{exec}{command} }), qr/POST .*\/quitquitquit/,
	'preStop drains through /quitquitquit');
my %xp = map { $_ => 1 } split /,/, $xports // '';
ok($xp{ $side->{readinessProbe}{httpGet}{port} }, 'the readiness port is not intercepted');

# The sidecar's config is valid and agrees with the interception ports.
my ($cm) = grep { $_->{metadata}{name} eq $vol{'wingman-config'}{configMap}{name} } @{ $by_kind{ConfigMap} };
my $yaml = $cm->{data}{'wingman.yaml'};
ok($yaml, 'ConfigMap carries wingman.yaml');
my $conf = spew(tmpdir() . '/k8s-wingman.yaml', $yaml);
my $out = `$ENV{WINGMAN} -t -c $conf 2>&1`;
is($?, 0, 'wingman -t accepts the ConfigMap config') or diag($out);
like($yaml, qr/address: 127\.0\.0\.1:$oport\n\s+direction: outbound\n\s+original_dst: true/,
	"outbound original_dst listener on the --outbound-port ($oport)");
like($yaml, qr/address: 0\.0\.0\.0:$iport\n\s+direction: inbound\n\s+original_dst: true/,
	"inbound original_dst listener on the --inbound-port ($iport)");
like($yaml, qr/source_address: 127\.0\.0\.6/, 'inbound cluster reaches the app from 127.0.0.6');
done_testing;
