# The seed topology as real pods (netns + veth + cgroup v2), intercepted by
# `wingman intercept` (eBPF) with no iptables rule: outbound by original
# destination, inbound by sk_lookup, plain TCP passthrough, REGISTRY_ONLY,
# excluded ports, remove. Needs root (CI is root).
use strict;
use warnings;
use Test::More;
use Wingman;
use Pod;
use PodSeed;

my $why = Pod::unavailable();
plan skip_all => $why if $why;

PodSeed::run('ebpf');
done_testing;
